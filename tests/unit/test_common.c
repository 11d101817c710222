/*
 * test_common - the common/ helpers: capped buffers, SHA-256 (standard test
 * vectors, streaming, hex round trip), ISO-8601 parsing and formatting,
 * atomic writes and capped reads, and the log line format.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/digest.h"
#include "common/fileutil.h"
#include "common/log.h"
#include "common/timeutil.h"
#include "test.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A fresh temp directory for this process; removed by rm_tree(). */
static void make_tmpdir(char *dir, size_t len)
{
	const char *base = getenv("TMPDIR");

	snprintf(dir, len, "%s/assetfs-test-common.XXXXXX",
		 base && *base ? base : "/tmp");
	if (!mkdtemp(dir))
		test_fail(__FILE__, __LINE__, "mkdtemp: %s", strerror(errno));
}

static void rm_tree(const char *dir)
{
	char cmd[4200];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		test_fail(__FILE__, __LINE__, "rm -rf %s failed", dir);
}

static size_t count_entries(const char *dir)
{
	char cmd[4200];
	FILE *p;
	size_t n = 0;
	int c;

	snprintf(cmd, sizeof(cmd), "ls -A '%s'", dir);
	p = popen(cmd, "r");
	if (!p)
		return 0;
	while ((c = fgetc(p)) != EOF)
		n += c == '\n';
	pclose(p);
	return n;
}

test(buf_append_and_cap)
{
	struct buf b;

	buf_init(&b, 10);
	CHECK(b.data == NULL && b.len == 0);
	CHECK_INT(buf_append(&b, "hello", 5), 0);
	CHECK_INT(buf_puts(&b, "world"), 0);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "helloworld");
	/* One byte past the cap: refused, buffer unchanged. */
	CHECK_INT(buf_append(&b, "!", 1), -EFBIG);
	CHECK_INT(buf_puts(&b, "!"), -EFBIG);
	CHECK_INT(buf_printf(&b, "%d", 1), -EFBIG);
	CHECK_INT(b.len, 10);
	CHECK_STR(b.data, "helloworld");
	/* Appending nothing at the cap is fine. */
	CHECK_INT(buf_append(&b, "", 0), 0);
	buf_reset(&b);
	CHECK_INT(b.len, 0);
	CHECK_STR(b.data, "");
	CHECK_INT(buf_printf(&b, "%s-%03d", "x", 7), 0);
	CHECK_STR(b.data, "x-007");
	/* A huge request is refused by the cap before any allocation. */
	CHECK_INT(buf_append(&b, "", (size_t)-1), -EFBIG);
	buf_free(&b);
	CHECK(b.data == NULL && b.len == 0);
	buf_free(&b);
	buf_free(NULL);
}

test(buf_uncapped_growth_and_binary)
{
	struct buf b;
	char chunk[1000];

	buf_init(&b, 0);
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (char)i; /* includes NUL bytes */
	for (int i = 0; i < 1000; i++)
		CHECK_INT(buf_append(&b, chunk, sizeof(chunk)), 0);
	CHECK_INT(b.len, 1000000);
	CHECK(b.cap >= b.len);
	CHECK(b.data[b.len] == '\0');
	CHECK(memcmp(b.data + 999000, chunk, sizeof(chunk)) == 0);
	/* A printf longer than the first allocation. */
	buf_reset(&b);
	CHECK_INT(buf_printf(&b, "%0500d|%s", 5, "end"), 0);
	CHECK_INT(b.len, 504);
	CHECK_STR(b.data + 499, "5|end");
	buf_free(&b);
}

test(buf_exact_cap_printf)
{
	struct buf b;

	buf_init(&b, 5);
	CHECK_INT(buf_printf(&b, "%s", "12345"), 0);
	CHECK_STR(b.data, "12345");
	buf_free(&b);
	buf_init(&b, 5);
	CHECK_INT(buf_printf(&b, "%s", "123456"), -EFBIG);
	CHECK(b.len == 0);
	buf_free(&b);
}

test(buf_steal_takes_ownership)
{
	struct buf b;
	char *s;

	buf_init(&b, 0);
	s = buf_steal(&b);
	CHECK_STR(s, "");
	free(s);
	CHECK_INT(buf_puts(&b, "abc"), 0);
	s = buf_steal(&b);
	CHECK_STR(s, "abc");
	CHECK(b.data == NULL && b.len == 0);
	free(s);
	/* Still usable after stealing. */
	CHECK_INT(buf_puts(&b, "x"), 0);
	CHECK_STR(b.data, "x");
	buf_free(&b);
}

test(sha256_vectors)
{
	static const struct {
		const char *in, *hex;
	} t[] = {
	    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b"
		 "855"},
	    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f2"
		    "0015ad"},
	    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c"
	     "1"},
	    {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoi"
	     "jklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	     "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d"
	     "1"},
	};
	char hex[DIGEST_HEX_LEN + 1];
	struct digest d;

	for (size_t i = 0; i < N(t); i++) {
		CHECK_INT(digest_buf(t[i].in, strlen(t[i].in), &d), 0);
		digest_to_hex(&d, hex);
		CHECK_STR(hex, t[i].hex);
	}
}

test(sha256_streaming_million_a)
{
	static const char want[] =
	    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
	struct hasher *h = hasher_new();
	char chunk[1000], hex[DIGEST_HEX_LEN + 1];
	struct digest d, one;
	char *all = malloc(1000000);

	CHECK(h != NULL);
	if (!h || !all)
		return;
	memset(chunk, 'a', sizeof(chunk));
	memset(all, 'a', 1000000);
	/* Uneven pieces: the result must not depend on how bytes arrive. */
	for (size_t off = 0, step = 1; off < 1000000;
	     step = step * 3 % 997 + 1) {
		size_t n = 1000000 - off < step ? 1000000 - off : step;

		hasher_update(h, all + off, n);
		off += n;
	}
	CHECK_INT(hasher_final(h, &d), 0);
	digest_to_hex(&d, hex);
	CHECK_STR(hex, want);
	CHECK_INT(digest_buf(all, 1000000, &one), 0);
	CHECK(digest_equal(&d, &one));
	/* A finished hasher starts again from scratch. */
	hasher_update(h, "abc", 3);
	CHECK_INT(hasher_final(h, &d), 0);
	digest_to_hex(&d, hex);
	CHECK_STR(
	    hex,
	    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	hasher_free(h);
	hasher_free(NULL);
	free(all);
}

test(digest_hex_round_trip)
{
	static const char *const bad[] = {
	    "",
	    "abc",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b8555",
	    "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85 ",
	    " e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85",
	    "0x b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
	};
	char hex[DIGEST_HEX_LEN + 1];
	struct digest d, e;

	for (int i = 0; i < 256; i++) {
		memset(&d, 0, sizeof(d));
		d.b[i % DIGEST_LEN] = (uint8_t)i;
		d.b[(i * 7) % DIGEST_LEN] ^= 0xa5;
		digest_to_hex(&d, hex);
		CHECK_INT(strlen(hex), DIGEST_HEX_LEN);
		CHECK_INT(digest_from_hex(hex, &e), 0);
		CHECK(digest_equal(&d, &e));
	}
	CHECK_INT(digest_from_hex("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B"
				  "934CA495991B7852B855",
				  &e),
		  0);
	digest_to_hex(&e, hex);
	CHECK_STR(
	    hex,
	    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	for (size_t i = 0; i < N(bad); i++)
		CHECK_INT(digest_from_hex(bad[i], &e), -EINVAL);
	CHECK_INT(digest_from_hex(NULL, &e), -EINVAL);
	memset(&e, 1, sizeof(e));
	CHECK(!digest_equal(&d, &e));
}

test(xxh3_known_value)
{
	/* XXH3_64bits of the empty input (seed 0), from the xxHash docs. */
	CHECK(digest_xxh3("", 0) == 0x2D06800538D394C2ull);
	CHECK(digest_xxh3("a", 1) != digest_xxh3("b", 1));
	CHECK(digest_xxh3("abc", 3) == digest_xxh3("abc", 3));
}

test(iso8601_parse_forms)
{
	static const struct {
		const char *s;
		int64_t sec;
		int32_t nsec;
	} t[] = {
	    {"1970-01-01T00:00:00", 0, 0},
	    {"1970-01-01T00:00:00Z", 0, 0},
	    {"2021-01-02T03:04:05", 1609556645, 0},
	    {"2021-01-02T03:04:05.123456", 1609556645, 123456000},
	    {"2021-01-02T03:04:05.1", 1609556645, 100000000},
	    {"2021-01-02T03:04:05,5", 1609556645, 500000000},
	    {"2021-01-02T03:04:05.000000001", 1609556645, 1},
	    {"2021-01-02T03:04:05.9999999999999", 1609556645, 999999999},
	    {"2021-01-02T03:04:05+01:00", 1609556645 - 3600, 0},
	    {"2021-01-02T03:04:05-01:30", 1609556645 + 5400, 0},
	    {"2021-01-02T03:04:05+0100", 1609556645 - 3600, 0},
	    {"2021-01-02T03:04:05.5-00:00", 1609556645, 500000000},
	    {"2021-01-02 03:04:05", 1609556645, 0},
	    {"2024-02-29T12:00:00Z", 1709208000, 0},
	    {"2000-02-29T00:00:00Z", 951782400, 0},
	    {"1969-12-31T23:59:59Z", -1, 0},
	    {"2038-01-19T03:14:08Z", 2147483648ll, 0},
	    {"2016-12-31T23:59:60Z", 1483228800, 0}, /* leap second */
	};
	for (size_t i = 0; i < N(t); i++) {
		int64_t sec = 42;
		int32_t nsec = 42;
		int ret = time_parse_iso8601(t[i].s, &sec, &nsec);

		if (ret != 0 || sec != t[i].sec || nsec != t[i].nsec)
			test_fail(__FILE__, __LINE__,
				  "'%s' = %d, %lld.%09d; want %lld.%09d",
				  t[i].s, ret, (long long)sec, nsec,
				  (long long)t[i].sec, t[i].nsec);
	}
}

test(iso8601_parse_invalid)
{
	static const char *const bad[] = {
	    "",
	    "2021",
	    "2021-01-02",
	    "2021-01-02T",
	    "2021-01-02T03:04",
	    "2021-02-29T00:00:00",
	    "1900-02-29T00:00:00",
	    "2021-02-30T00:00:00",
	    "2021-04-31T00:00:00",
	    "2021-00-10T00:00:00",
	    "2021-13-10T00:00:00",
	    "2021-01-00T00:00:00",
	    "2021-01-32T00:00:00",
	    "2021-01-02T24:00:00",
	    "2021-01-02T23:60:00",
	    "2021-01-02T23:59:61",
	    "2021-01-02X03:04:05",
	    "2021-01-02T03:04:05.",
	    "2021-01-02T03:04:05.Z",
	    "2021-01-02T03:04:05+1",
	    "2021-01-02T03:04:05+01",
	    "2021-01-02T03:04:05+24:00",
	    "2021-01-02T03:04:05+01:60",
	    "2021-01-02T03:04:05ZZ",
	    "2021-01-02T03:04:05 ",
	    " 2021-01-02T03:04:05",
	    "2021-1-2T3:4:5",
	    "20210102T030405Z",
	    "2021-01-02T03-04-05Z",
	    "abcd-ef-ghTij:kl:mn",
	    "2021-01-02T03:04:05\n",
	};
	int64_t sec;
	int32_t nsec;

	for (size_t i = 0; i < N(bad); i++) {
		if (time_parse_iso8601(bad[i], &sec, &nsec) != -EINVAL)
			test_fail(__FILE__, __LINE__, "'%s' accepted", bad[i]);
	}
	CHECK_INT(time_parse_iso8601(NULL, &sec, &nsec), -EINVAL);
}

test(iso8601_format_round_trip)
{
	static const struct {
		int64_t sec;
		int32_t nsec;
		const char *want;
	} t[] = {
	    {0, 0, "1970-01-01T00:00:00.000000Z"},
	    {1609556645, 123456789, "2021-01-02T03:04:05.123456Z"},
	    {1709208000, 999999999, "2024-02-29T12:00:00.999999Z"},
	    {253402300799ll, 0, "9999-12-31T23:59:59.000000Z"},
	};
	char buf[64];

	for (size_t i = 0; i < N(t); i++) {
		int64_t sec;
		int32_t nsec;

		CHECK_INT(
		    time_format_iso8601(t[i].sec, t[i].nsec, buf, sizeof(buf)),
		    27);
		CHECK_STR(buf, t[i].want);
		CHECK_INT(time_parse_iso8601(buf, &sec, &nsec), 0);
		CHECK_INT(sec, t[i].sec);
		CHECK_INT(nsec, t[i].nsec / 1000 * 1000);
	}
	CHECK_INT(time_format_iso8601(0, 0, buf, 27), -ENOSPC);
	CHECK_INT(time_format_iso8601(0, 0, buf, 28), 27);
	/* Years that would not read back as ISO-8601 are refused. */
	CHECK_INT(time_format_iso8601(-62167219200ll, 0, buf, sizeof(buf)), 27);
	CHECK_STR(buf, "0000-01-01T00:00:00.000000Z");
	CHECK_INT(time_format_iso8601(-62167219201ll, 0, buf, sizeof(buf)),
		  -EINVAL);
	CHECK_INT(time_format_iso8601(253402300800ll, 0, buf, sizeof(buf)),
		  -EINVAL);
}

test(clocks_move_forward)
{
	int64_t a = time_mono_ns(), b, sec;
	int32_t nsec;

	usleep(2000);
	b = time_mono_ns();
	CHECK(b - a >= 2000000);
	CHECK(time_mono_ms() >= a / 1000000);
	time_now(&sec, &nsec);
	CHECK(sec > 1600000000);
	CHECK(nsec >= 0 && nsec < 1000000000);
}

test(write_atomic_and_read_capped)
{
	char dir[4096], path[4200];
	struct buf b;
	struct stat st;
	char *big;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/file.json", dir);
	CHECK_INT(file_write_atomic(path, "{\"a\": 1}", 8, 0644, false), 0);
	buf_init(&b, 0);
	CHECK_INT(file_read_capped(path, 1024, &b), 0);
	CHECK_STR(b.data, "{\"a\": 1}");
	CHECK_INT(b.len, 8);
	/* Replacing is atomic: the new content, no temp file left over. */
	CHECK_INT(file_write_atomic(path, "second", 6, 0600, true), 0);
	buf_reset(&b);
	CHECK_INT(file_read_capped(path, 6, &b), 0); /* exactly the cap */
	CHECK_STR(b.data, "second");
	CHECK_INT(stat(path, &st), 0);
	CHECK_INT(st.st_mode & 0777, 0600);
	CHECK_INT(count_entries(dir), 1);
	/* One byte over the cap. */
	buf_reset(&b);
	CHECK_INT(file_read_capped(path, 5, &b), -EFBIG);
	/* Large file over the cap: refused. */
	big = malloc(300000);
	memset(big, 'z', 300000);
	CHECK_INT(file_write_atomic(path, big, 300000, 0644, false), 0);
	buf_reset(&b);
	CHECK_INT(file_read_capped(path, 300000, &b), 0);
	CHECK_INT(b.len, 300000);
	CHECK(memcmp(b.data, big, 300000) == 0);
	buf_reset(&b);
	CHECK_INT(file_read_capped(path, 200000, &b), -EFBIG);
	CHECK(b.len <= 200000);
	/* Empty file. */
	CHECK_INT(file_write_atomic(path, "", 0, 0644, false), 0);
	buf_reset(&b);
	CHECK_INT(file_read_capped(path, 10, &b), 0);
	CHECK_INT(b.len, 0);
	/* Errors are negative errnos and leave nothing behind. */
	snprintf(path, sizeof(path), "%s/missing/file", dir);
	CHECK_INT(file_write_atomic(path, "x", 1, 0644, false), -ENOENT);
	CHECK_INT(file_read_capped(path, 10, &b), -ENOENT);
	CHECK_INT(file_read_capped(dir, 10, &b), -EISDIR);
	CHECK_INT(count_entries(dir), 1);
	/* Renaming over a directory fails and the temp file is removed. */
	snprintf(path, sizeof(path), "%s/adir", dir);
	CHECK_INT(mkdir(path, 0755), 0);
	CHECK(file_write_atomic(path, "x", 1, 0644, false) < 0);
	CHECK_INT(count_entries(dir), 2);
	free(big);
	buf_free(&b);
	rm_tree(dir);
}

test(mkdir_p_and_io_helpers)
{
	char dir[4096], path[4200], got[16];
	struct stat st;
	int fd;

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/a/b/c", dir);
	CHECK_INT(mkdir_p(path, 0755), 0);
	CHECK_INT(stat(path, &st), 0);
	CHECK(S_ISDIR(st.st_mode));
	CHECK_INT(mkdir_p(path, 0755), 0); /* already there */
	snprintf(path, sizeof(path), "%s/a/f", dir);
	fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	CHECK(fd >= 0);
	CHECK_INT(write_all(fd, "0123456789", 10), 0);
	CHECK_INT(pread_all(fd, got, 4, 3), 4);
	CHECK(memcmp(got, "3456", 4) == 0);
	CHECK_INT(pread_all(fd, got, 16, 8), 2); /* short at EOF */
	CHECK_INT(pread_all(fd, got, 4, 100), 0);
	close(fd);
	CHECK_INT(write_all(-1, "x", 1), -EBADF);
	CHECK_INT(pread_all(-1, got, 1, 0), -EBADF);
	/* A file in the way of a directory. */
	snprintf(path, sizeof(path), "%s/a/f/g", dir);
	CHECK_INT(mkdir_p(path, 0755), -ENOTDIR);
	rm_tree(dir);
}

test(log_line_format_and_level)
{
	char dir[4096], path[4200], want[128];
	enum log_level lvl;
	struct buf b;
	int saved, fd;

	CHECK_INT(log_level_parse("error", &lvl), 0);
	CHECK_INT(lvl, LOG_LVL_ERROR);
	CHECK_INT(log_level_parse("WARN", &lvl), 0);
	CHECK_INT(lvl, LOG_LVL_WARN);
	CHECK_INT(log_level_parse("debug", &lvl), 0);
	CHECK_INT(lvl, LOG_LVL_DEBUG);
	CHECK_INT(log_level_parse("verbose", &lvl), -EINVAL);
	CHECK_INT(log_level_parse(NULL, &lvl), -EINVAL);

	make_tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/log", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	saved = dup(STDERR_FILENO);
	dup2(fd, STDERR_FILENO);
	unsetenv("ASSETFS_LOG");
	log_init("unit", LOG_LVL_INFO);
	log_info("hello %d", 5);
	log_debug("hidden");
	log_warn("trailing newlines are dropped\n\n");
	setenv("ASSETFS_LOG", "debug", 1);
	log_init(NULL, LOG_LVL_ERROR); /* the env var wins */
	log_debug("now shown");
	CHECK_INT(log_get_level(), LOG_LVL_DEBUG);
	log_set_level(LOG_LVL_ERROR);
	log_warn("not shown");
	unsetenv("ASSETFS_LOG");
	dup2(saved, STDERR_FILENO);
	close(saved);
	close(fd);
	log_set_level(LOG_LVL_INFO);

	buf_init(&b, 0);
	CHECK_INT(file_read_capped(path, 4096, &b), 0);
	snprintf(want, sizeof(want), "Z unit[%d] info: hello 5\n",
		 (int)getpid());
	CHECK_STR_CONTAINS(b.data, want);
	CHECK_STR_CONTAINS(b.data, "warn: trailing newlines are dropped\n2");
	CHECK_STR_CONTAINS(b.data, "debug: now shown\n");
	CHECK(!strstr(b.data, "hidden"));
	CHECK(!strstr(b.data, "not shown"));
	/* Each line starts with an ISO-8601 UTC time stamp. */
	CHECK(b.len > 21 && b.data[4] == '-' && b.data[10] == 'T' &&
	      b.data[19] == 'Z');
	buf_free(&b);
	rm_tree(dir);
}

test(buf_fill_takes_what_fits)
{
	char dst[10];
	size_t have = 0, len = 7;
	const char *in = "abcdefg";

	CHECK_INT(buf_fill(dst, &have, sizeof(dst), &in, &len), 7);
	CHECK_INT(have, 7);
	CHECK_INT(len, 0);
	in = "hijklm";
	len = 6;
	CHECK_INT(buf_fill(dst, &have, sizeof(dst), &in, &len), 3);
	CHECK_INT(have, 10);
	CHECK_INT(len, 3);
	CHECK(memcmp(dst, "abcdefghij", 10) == 0);
	CHECK(memcmp(in, "klm", 3) == 0);
	CHECK_INT(buf_fill(dst, &have, sizeof(dst), &in, &len), 0); /* full */
}
