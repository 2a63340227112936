#!/usr/bin/env node
// A gRPC client no one here wrote: drives a running Regelmotor server from Node.js with
// @grpc/grpc-js, loading our .proto files with @grpc/proto-loader, and prints one JSON document
// with what it observed (tests/test_node_client.py asserts on it).
//
//   node tests/node/client.js <host:port> <google_proto_root>
//        [--ca-file ca.crt [--cert-file client.crt --key-file client.key]] [--token-file token]
//
// <google_proto_root> is the include root holding google/rpc/status.proto and
// google/rpc/error_details.proto (the googleapis-common-protos Python package ships them).
// With --ca-file the client speaks TLS trusting that CA (mutual TLS with a client certificate too);
// with --token-file it sends `authorization: Bearer <token>` on every call through call credentials
// (which grpc-js sends only over TLS), and also makes one call without the token to show it refused.
'use strict';

const fs = require('fs');
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const protobuf = require('protobufjs');

const DEADLINE_MS = 30000;
const PROTOS = path.resolve(__dirname, '..', '..', 'protos');

const VALID_FACTS = {
  ansiennitetsdato: '2026-03-30',
  fodselsdato: '2004-05-02',
  fagomrade: 'tsb',
  tilstand: 'tsb_alkohol',
  forventet_nytte: true,
  kostnad_rimelig: true,
};
const INVALID_FACTS = { ...VALID_FACTS, fagomrade: 'kirurgi' };

// Struct stays in its wire form ({fields: {name: {stringValue: ...}}}); see toStruct/fromStruct.
const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true };

// ---------------------------------------------------------------------------------------------
// google.protobuf.Struct / Value in proto-loader's object form <-> plain JSON.

function toValue(json) {
  if (json === null || json === undefined) return { nullValue: 'NULL_VALUE' };
  if (typeof json === 'boolean') return { boolValue: json };
  if (typeof json === 'number') return { numberValue: json };
  if (typeof json === 'string') return { stringValue: json };
  if (Array.isArray(json)) return { listValue: { values: json.map(toValue) } };
  if (typeof json === 'object') return { structValue: toStruct(json) };
  throw new TypeError(`cannot convert ${typeof json} to google.protobuf.Value`);
}

function toStruct(json) {
  const fields = {};
  for (const [name, value] of Object.entries(json)) fields[name] = toValue(value);
  return { fields };
}

function fromValue(value) {
  if (value === null || value === undefined) return null;
  switch (value.kind) {
    case 'nullValue': return null;
    case 'boolValue': return value.boolValue;
    case 'numberValue': return value.numberValue;
    case 'stringValue': return value.stringValue;
    case 'listValue': return ((value.listValue && value.listValue.values) || []).map(fromValue);
    case 'structValue': return fromStruct(value.structValue);
    default: return null; // no kind set: an unset Value
  }
}

function fromStruct(struct) {
  if (struct === null || struct === undefined) return null;
  const json = {};
  for (const [name, value] of Object.entries(struct.fields || {})) json[name] = fromValue(value);
  return json;
}

// ---------------------------------------------------------------------------------------------
// Rich error details: google.rpc.Status in the grpc-status-details-bin trailer, details as Any.

function loadErrorTypes(googleRoot) {
  const root = new protobuf.Root();
  root.resolvePath = (origin, target) => {
    if (path.isAbsolute(target)) return target;
    for (const dir of [googleRoot, PROTOS]) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return protobuf.util.path.resolve(origin, target);
  };
  root.loadSync(['google/rpc/status.proto', 'google/rpc/error_details.proto'], { keepCase: true });
  root.resolveAll();
  return root;
}

function decodeAny(types, any) {
  const typeUrl = any.type_url;
  const typeName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  let type;
  try {
    type = types.lookupType(typeName);
  } catch (e) {
    return { '@type': typeUrl, undecoded: Buffer.from(any.value || []).toString('base64') };
  }
  const message = type.decode(any.value);
  return { '@type': typeUrl, ...type.toObject(message, { longs: String, enums: String, defaults: true }) };
}

function decodeStatusDetails(types, metadata) {
  const raw = metadata.get('grpc-status-details-bin');
  if (raw.length === 0) return null;
  const Status = types.lookupType('google.rpc.Status');
  const status = Status.toObject(Status.decode(raw[0]), { longs: String, enums: String, defaults: true });
  return {
    code: status.code,
    message: status.message,
    details: (status.details || []).map((any) => decodeAny(types, any)),
  };
}

// ---------------------------------------------------------------------------------------------

// The decision as plain JSON; `full` keeps the facts and each rule's conditions (the unary call),
// otherwise they are left out to keep the document small (the stream items).
function summariseDecision(decision, full = true) {
  const rules = (decision.explanation && decision.explanation.rules) || [];
  const summary = {
    decision_id: decision.decision_id,
    request_id: decision.request_id,
    ruleset: decision.ruleset,
    version: decision.version,
    ruleset_sha256: decision.ruleset_sha256,
    engine_version: decision.engine_version,
    as_of: decision.as_of,
    selected_by: decision.selected_by,
    trace_id: decision.trace_id,
    outcome: fromStruct(decision.outcome),
    rules: rules.map((rule) => {
      const summary = {
        id: rule.id,
        fired: rule.fired,
        applied: rule.applied,
        hjemmel: (rule.hjemmel || []).map((h) => ({ id: h.id, kilde: h.kilde, paragraf: h.paragraf, sitat: h.sitat })),
      };
      if (full) {
        summary.conditions = (rule.conditions || []).map(
          (c) => ({ condition: c.condition, held: c.held, reads: fromStruct(c.reads) }));
      }
      return summary;
    }),
  };
  if (full) summary.facts = fromStruct(decision.facts);
  return summary;
}

function request(facts, requestId) {
  return {
    ruleset: 'rett-til-helsehjelp',
    as_of: '2026-04-20',
    facts: toStruct(facts),
    request_id: requestId,
  };
}

function deadline() {
  return new Date(Date.now() + DEADLINE_MS);
}

function evaluate(client, req) {
  return new Promise((resolve) => {
    client.Evaluate(req, { deadline: deadline() }, (error, decision) => resolve({ error, decision }));
  });
}

function evaluateStream(client, requests) {
  return new Promise((resolve) => {
    const results = [];
    const call = client.EvaluateStream({ deadline: deadline() });
    call.on('data', (response) => results.push(response));
    call.on('error', (error) => resolve({ error, results }));
    call.on('end', () => resolve({ error: null, results }));
    for (const req of requests) call.write(req);
    call.end();
  });
}

function describeError(types, error) {
  return {
    code: error.code,
    code_name: grpc.status[error.code],
    details: error.details,
    status: error.metadata ? decodeStatusDetails(types, error.metadata) : null,
  };
}

const OPTIONS = ['--ca-file', '--cert-file', '--key-file', '--token-file'];

function usage(problem) {
  process.stderr.write(`${problem}\nusage: node client.js <host:port> <google_proto_root> ` +
    '[--ca-file F [--cert-file F --key-file F]] [--token-file F]\n');
  process.exit(2);
}

function parseArguments(argv) {
  const [address, googleRoot, ...rest] = argv;
  if (!address || !googleRoot) usage('missing <host:port> or <google_proto_root>');
  const options = {};
  for (let i = 0; i < rest.length; i += 2) {
    if (!OPTIONS.includes(rest[i]) || rest[i + 1] === undefined) usage(`unknown option or missing value: ${rest[i]}`);
    options[rest[i].slice(2)] = rest[i + 1];
  }
  if (('cert-file' in options) !== ('key-file' in options)) usage('--cert-file and --key-file go together');
  if (('cert-file' in options || 'token-file' in options) && !('ca-file' in options)) {
    usage('--cert-file and --token-file need --ca-file (TLS)');
  }
  return { address, googleRoot, options };
}

// TLS channel credentials from the files given, or plaintext without --ca-file.
function channelCredentials(options) {
  if (!('ca-file' in options)) return grpc.credentials.createInsecure();
  const read = (name) => (name in options ? fs.readFileSync(options[name]) : null);
  return grpc.credentials.createSsl(read('ca-file'), read('key-file'), read('cert-file'));
}

// Bearer call credentials: the token file is read for every call, so a rotated file is picked up.
function bearerCredentials(tokenFile) {
  return grpc.credentials.createFromMetadataGenerator((_params, callback) => {
    let token;
    try {
      token = fs.readFileSync(tokenFile, 'ascii').trim();
    } catch (error) {
      callback(error);
      return;
    }
    const metadata = new grpc.Metadata();
    metadata.set('authorization', `Bearer ${token}`);
    callback(null, metadata);
  });
}

async function main() {
  const { address, googleRoot, options } = parseArguments(process.argv.slice(2));
  const definition = protoLoader.loadSync(
    [path.join(PROTOS, 'regelmotor/v1/decision.proto'), path.join(PROTOS, 'regelmotor/v1/ruleset.proto')],
    { ...LOADER_OPTIONS, includeDirs: [PROTOS, googleRoot] },
  );
  const api = grpc.loadPackageDefinition(definition).regelmotor.v1;
  const types = loadErrorTypes(googleRoot);
  const channel = channelCredentials(options);
  const credentials = 'token-file' in options
    ? grpc.credentials.combineChannelCredentials(channel, bearerCredentials(options['token-file']))
    : channel;
  const client = new api.DecisionService(address, credentials);
  const observed = {
    grpc_js_version: require('@grpc/grpc-js/package.json').version,
    tls: 'ca-file' in options,
    token: 'token-file' in options,
  };

  try {
    if ('token-file' in options) {
      // The same call without the token, on a channel without call credentials: it must be refused.
      const bare = new api.DecisionService(address, channel);
      try {
        const refused = await evaluate(bare, request(VALID_FACTS, 'node-no-token'));
        observed.evaluate_without_token = refused.error
          ? { error: describeError(types, refused.error) }
          : { decision: summariseDecision(refused.decision) };
      } finally {
        bare.close();
      }
    }

    // Unary, valid.
    const ok = await evaluate(client, request(VALID_FACTS, 'node-unary-ok'));
    observed.evaluate = ok.error ? { error: describeError(types, ok.error) } : { decision: summariseDecision(ok.decision) };

    // Unary, invalid: INVALID_ARGUMENT with google.rpc.Status in grpc-status-details-bin.
    const bad = await evaluate(client, request(INVALID_FACTS, 'node-unary-bad'));
    observed.evaluate_invalid = bad.error
      ? { error: describeError(types, bad.error) }
      : { decision: summariseDecision(bad.decision) };

    // Bidirectional stream: five requests, the middle one invalid.
    const requests = [0, 1, 2, 3, 4].map((i) => request(i === 2 ? INVALID_FACTS : VALID_FACTS, `node-stream-${i}`));
    const stream = await evaluateStream(client, requests);
    observed.stream = {
      error: stream.error ? describeError(types, stream.error) : null,
      results: stream.results.map((r) => {
        const item = { index: r.index, request_id: r.request_id, result: r.result };
        if (r.result === 'decision') item.decision = summariseDecision(r.decision, false);
        if (r.result === 'error') {
          item.error = {
            code: r.error.code,
            message: r.error.message,
            details: (r.error.details || []).map((any) => decodeAny(types, any)),
          };
        }
        return item;
      }),
    };
  } finally {
    client.close();
  }
  process.stdout.write(JSON.stringify(observed, null, 2) + '\n');
}

main().catch((error) => {
  process.stderr.write(`${error && error.stack ? error.stack : error}\n`);
  process.exit(1);
});
