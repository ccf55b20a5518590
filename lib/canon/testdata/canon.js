'use strict';
// Reference canonicaliser for TestCanonicalNode (canon_test.go).
//
// usage: node canon.js IN OUT
//
// IN holds one document per line, base64 of its UTF-8 bytes. For each line,
// OUT gets one line: base64 of the UTF-8 of
// JSON.stringify(deepSortKeys(JSON.parse(doc))), or "ERR" if JSON.parse
// throws. base64 keeps newlines in documents and makes the bytes exact.
const fs = require('fs');

// deepSortKeys exactly as Declaragent's packages/core/src/audit/chain-verify.ts.
function deepSortKeys(value) {
  if (Array.isArray(value)) return value.map(deepSortKeys);
  if (value && typeof value === 'object') {
    const keys = Object.keys(value).sort();
    const out = {};
    for (const k of keys) {
      out[k] = deepSortKeys(value[k]);
    }
    return out;
  }
  return value;
}

const [inPath, outPath] = process.argv.slice(2);
const lines = fs.readFileSync(inPath, 'latin1').split('\n');
if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
const out = [];
for (const line of lines) {
  const doc = Buffer.from(line, 'base64').toString('utf8');
  let v;
  try {
    v = JSON.parse(doc);
  } catch (e) {
    out.push('ERR');
    continue;
  }
  out.push(Buffer.from(JSON.stringify(deepSortKeys(v)), 'utf8').toString('base64'));
}
fs.writeFileSync(outPath, out.join('\n') + '\n');
