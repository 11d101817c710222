/*
 * curl_xml - see curl_xml.h. One loop over xmlTextReader events serves
 * both entry points: cx_find_text() is a table of one record kind whose
 * item is the element wanted and whose one field is its own text.
 *
 * A record opens at the start tag of its item and closes at the end tag
 * at the same depth (an empty <Item/> opens and closes at once). Inside,
 * the text of a field is gathered from the text and CDATA nodes below the
 * field's element until its end tag; a field seen twice keeps the first.
 */
#include "providers/curl_xml.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/xmlreader.h>

static pthread_once_t cx_once = PTHREAD_ONCE_INIT;

static void cx_init(void)
{
	xmlInitParser();
}

struct cx_state {
	const struct cx_record *kinds;
	size_t n;
	long kind;	 /* the open record's kind, -1 when none */
	int item_depth;	 /* depth of its item element */
	long field;	 /* the field being read, -1 when none */
	int field_depth;
	struct buf vals[CX_MAX_FIELDS];
	bool have[CX_MAX_FIELDS];
	size_t n_fields;
};

static size_t cx_count(const char *const *fields)
{
	size_t n = 0;

	while (fields && fields[n])
		n++;
	return n;
}

static void cx_open(struct cx_state *st, size_t kind, int depth)
{
	const struct cx_record *k = &st->kinds[kind];

	st->kind = (long)kind;
	st->item_depth = depth;
	st->field = -1;
	/* no fields: the record's one value is the item's own text */
	st->n_fields = k->fields ? cx_count(k->fields) : 1;
	memset(st->have, 0, sizeof(st->have));
	for (size_t i = 0; i < st->n_fields; i++) {
		buf_free(&st->vals[i]);
		buf_init(&st->vals[i], k->field_max);
	}
	if (!k->fields) {
		st->field = 0;
		st->field_depth = depth;
		st->have[0] = true;
	}
}

static int cx_close(struct cx_state *st, cx_record_fn fn, void *arg)
{
	const char *vals[CX_MAX_FIELDS] = { 0 };
	int ret;

	for (size_t i = 0; i < CX_MAX_FIELDS; i++)
		vals[i] = "";
	for (size_t i = 0; i < st->n_fields; i++) {
		if (st->have[i] && !st->vals[i].data &&
		    buf_append(&st->vals[i], "", 0) < 0)
			return -ENOMEM;
		vals[i] = st->vals[i].data ? st->vals[i].data : "";
	}
	ret = fn(arg, (size_t)st->kind, vals, st->have);
	st->kind = -1;
	return ret;
}

/* A start tag @name at @depth: opens a record or a field. */
static void cx_start(struct cx_state *st, const char *name, int depth)
{
	if (st->kind < 0) {
		for (size_t k = 0; k < st->n; k++)
			if (strcmp(name, st->kinds[k].item) == 0) {
				cx_open(st, k, depth);
				return;
			}
		return;
	}
	if (st->field != -1)
		return;
	for (size_t i = 0; i < st->n_fields; i++)
		if (!st->have[i] &&
		    strcmp(name, st->kinds[st->kind].fields[i]) == 0) {
			st->field = (long)i;
			st->field_depth = depth;
			st->have[i] = true;
			return;
		}
}

static int cx_run(const char *doc, size_t len, struct cx_state *st,
		  cx_record_fn fn, void *arg)
{
	xmlTextReaderPtr r = NULL;
	int ret = 0, step;

	if (len > INT_MAX)
		return -EFBIG;
	pthread_once(&cx_once, cx_init);
	r = xmlReaderForMemory(doc, (int)len, NULL, NULL,
			       XML_PARSE_NONET | XML_PARSE_NOERROR |
				   XML_PARSE_NOWARNING);
	if (!r)
		return -ENOMEM;
	while (ret == 0 && (step = xmlTextReaderRead(r)) == 1) {
		int type = xmlTextReaderNodeType(r);
		int depth = xmlTextReaderDepth(r);
		const char *name = (const char *)xmlTextReaderConstLocalName(r);
		bool empty = type == XML_READER_TYPE_ELEMENT &&
			     xmlTextReaderIsEmptyElement(r) == 1;

		switch (type) {
		case XML_READER_TYPE_DOCUMENT_TYPE:
		case XML_READER_TYPE_ENTITY_REFERENCE:
			ret = -EINVAL; /* no DTDs, no entities of their own */
			break;
		case XML_READER_TYPE_ELEMENT:
			if (!name)
				break;
			cx_start(st, name, depth);
			if (empty && st->field >= 0 &&
			    st->field_depth == depth)
				st->field = -1;
			if (empty && st->kind >= 0 &&
			    st->item_depth == depth)
				ret = cx_close(st, fn, arg);
			break;
		case XML_READER_TYPE_TEXT:
		case XML_READER_TYPE_CDATA:
		case XML_READER_TYPE_SIGNIFICANT_WHITESPACE:
			if (st->kind >= 0 && st->field >= 0) {
				const char *v = (const char *)
				    xmlTextReaderConstValue(r);

				if (v)
					ret = buf_puts(&st->vals[st->field], v);
			}
			break;
		case XML_READER_TYPE_END_ELEMENT:
			if (st->kind >= 0 && st->field >= 0 &&
			    st->field_depth == depth)
				st->field = -1;
			if (st->kind >= 0 && st->item_depth == depth)
				ret = cx_close(st, fn, arg);
			break;
		default:
			break;
		}
	}
	if (ret == 0 && step < 0)
		ret = -EINVAL;
	xmlFreeTextReader(r);
	return ret;
}

int cx_records(const char *doc, size_t len, const struct cx_record *kinds,
	       size_t n, cx_record_fn fn, void *arg)
{
	struct cx_state st = { .kinds = kinds, .n = n, .kind = -1,
			       .field = -1 };
	int ret;

	for (size_t k = 0; k < n; k++)
		if (cx_count(kinds[k].fields) > CX_MAX_FIELDS)
			return -EINVAL;
	ret = cx_run(doc, len, &st, fn, arg);
	for (size_t i = 0; i < CX_MAX_FIELDS; i++)
		buf_free(&st.vals[i]);
	return ret;
}

struct cx_find {
	struct buf *out;
	bool found;
};

/* The first record found ends the walk: -ECANCELED, turned into 0. */
static int cx_found(void *arg, size_t kind, const char *const *vals,
		    const bool *have)
{
	struct cx_find *f = arg;
	int ret;

	(void)kind;
	(void)have;
	f->found = true;
	ret = buf_puts(f->out, vals[0]);
	return ret < 0 ? ret : -ECANCELED;
}

int cx_find_text(const char *doc, size_t len, const char *name,
		 struct buf *out)
{
	struct cx_record k = { .item = name, .field_max = out->max };
	struct cx_find f = { .out = out };
	int ret;

	ret = cx_records(doc, len, &k, 1, cx_found, &f);
	if (ret == -ECANCELED)
		ret = 0;
	if (ret == 0 && !f.found)
		ret = -ENOENT;
	if (ret == 0 && !out->data)
		ret = buf_append(out, "", 0);
	return ret;
}

int cx_escape(struct buf *out, const char *s)
{
	xmlChar *e;
	int ret;

	pthread_once(&cx_once, cx_init);
	e = xmlEncodeSpecialChars(NULL, (const xmlChar *)s);
	if (!e)
		return -ENOMEM;
	ret = buf_puts(out, (const char *)e);
	xmlFree(e);
	return ret;
}
