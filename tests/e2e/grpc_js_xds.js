// Second independent xDS client: @grpc/grpc-js-xds 1.14.1 with @grpc/grpc-js 1.14.5.
// Driven by grpc_js_routing.py, which starts pilot-discovery and the backends and sets
// GRPC_XDS_BOOTSTRAP. Usage: node grpc_js_xds.js TARGET N [header=value ...]
// Prints one JSON line: {"counts": {"v1": n, ...}, "errors": {"UNAVAILABLE": n, ...}}.
'use strict';
const path = require('path');
const modules = process.env.GRPC_JS_MODULES || path.join(__dirname, 'js', 'node_modules');
const grpc = require(path.join(modules, '@grpc/grpc-js'));
const xds = require(path.join(modules, '@grpc/grpc-js-xds'));

xds.register();

const [target, nStr, ...hdrs] = process.argv.slice(2);
const n = parseInt(nStr, 10);
const client = new grpc.Client(target, grpc.credentials.createInsecure());
const ident = (x) => x;

function once(md) {
  return new Promise((resolve) => {
    client.makeUnaryRequest('/e2e.Greeter/Hello', ident, ident, Buffer.from('hi'), md,
      { deadline: Date.now() + 20000 },
      (err, resp) => resolve(err ? { err: grpc.status[err.code] } : { v: resp.toString() }));
  });
}

(async () => {
  const md = new grpc.Metadata();
  for (const h of hdrs) {
    const i = h.indexOf('=');
    md.set(h.slice(0, i), h.slice(i + 1));
  }
  const counts = {};
  const errors = {};
  for (let i = 0; i < n; i++) {
    const r = await once(md);
    if (r.err) errors[r.err] = (errors[r.err] || 0) + 1;
    else counts[r.v] = (counts[r.v] || 0) + 1;
  }
  process.stdout.write(JSON.stringify({ counts, errors }) + '\n');
  client.close();
  process.exit(0);
})();
