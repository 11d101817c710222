// A gRPC client of assetfs-server written with @grpc/grpc-js and
// @grpc/proto-loader (npm), loading the vendored server/proto/*.proto at
// run time: it calls every V2 method, ModelInfer with typed and raw
// tensors, an unknown model, and Seldon's Predict, and prints what it got
// as one JSON object for tests/integration/test_server_grpc_node.py.
//
// Usage: node grpc_client.js HOST:PORT PROTO_DIR MODEL ROWS_JSON
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const loader = require('@grpc/proto-loader');

const [target, protoDir, model, rowsJson] = process.argv.slice(2);
const rows = JSON.parse(rowsJson);
const opts = {keepCase: true, longs: String, enums: String, defaults: true,
  oneofs: true, includeDirs: [protoDir, '/usr/include']};
const v2 = grpc.loadPackageDefinition(loader.loadSync(
  path.join(protoDir, 'grpc_predict_v2.proto'), opts)).inference;
const seldon = grpc.loadPackageDefinition(loader.loadSync(
  path.join(protoDir, 'prediction.proto'), opts)).seldon.protos;
const creds = grpc.credentials.createInsecure();
const stub = new v2.GRPCInferenceService(target, creds);
const model_stub = new seldon.Model(target, creds);

function call(client, method, req) {
  return new Promise((resolve) => {
    client[method](req, (err, resp) => resolve(err ?
      {code: err.code, details: err.details} : resp));
  });
}

async function main() {
  const out = {};
  const flat = rows.flat();
  const shape = [rows.length, rows[0].length];
  out.live = (await call(stub, 'ServerLive', {})).live;
  out.ready = (await call(stub, 'ServerReady', {})).ready;
  out.model_ready = (await call(stub, 'ModelReady', {name: model})).ready;
  out.server = await call(stub, 'ServerMetadata', {});
  out.model = await call(stub, 'ModelMetadata', {name: model});
  const typed = await call(stub, 'ModelInfer', {model_name: model, id: 'n1',
    inputs: [{name: 'x', datatype: 'FP32', shape: shape,
      contents: {fp32_contents: flat}}]});
  out.typed = {id: typed.id, version: typed.model_version,
    outputs: typed.outputs.map((o) => ({name: o.name, datatype: o.datatype,
      shape: o.shape.map(Number), data: o.contents.fp32_contents}))};
  const raw = Buffer.alloc(flat.length * 8);
  flat.forEach((v, i) => raw.writeDoubleLE(v, i * 8));
  const r = await call(stub, 'ModelInfer', {model_name: model,
    inputs: [{name: 'x', datatype: 'FP64', shape: shape}],
    outputs: [{name: 'predict'}, {name: 'predict_proba'}],
    raw_input_contents: [raw]});
  out.raw = r.outputs.map((o, i) => {
    const b = r.raw_output_contents[i];
    const data = [];
    for (let j = 0; j < b.length; j += 4 * (o.datatype === 'INT64' ? 2 : 1))
      data.push(o.datatype === 'INT64' ? Number(b.readBigInt64LE(j)) :
        b.readFloatLE(j));
    return {name: o.name, datatype: o.datatype, shape: o.shape.map(Number),
      data: data};
  });
  out.unknown = await call(stub, 'ModelInfer', {model_name: 'nope',
    inputs: [{name: 'x', datatype: 'FP32', shape: shape,
      contents: {fp32_contents: flat}}]});
  // google.protobuf.Value comes from protobufjs's own copy of
  // struct.proto, whose fields are camelCase whatever keepCase says
  const p = await call(model_stub, 'Predict', {data: {ndarray: {values:
    rows.map((row) => ({listValue: {values:
      row.map((v) => ({numberValue: v}))}}))}}});
  if (!p.data) throw new Error('Predict: ' + JSON.stringify(p));
  out.seldon = {names: p.data.names, requestPath: p.meta.requestPath,
    ndarray: p.data.ndarray.values.map((row) =>
      row.listValue.values.map((v) => v.numberValue))};
  process.stdout.write(JSON.stringify(out));
}

main().then(() => process.exit(0), (e) => {
  console.error(e);
  process.exit(1);
});
