// Loads a LayersModel folder in TensorFlow.js and writes its predictions:
//   node tests/tfjs/predict.js MODEL_DIR input.json output.json
// Tensors are {"shape": [...], "data": [...]} (row-major), as
// fedmarket-engine predict reads and writes them.
'use strict';
const fs = require('fs');
const tf = require('@tensorflow/tfjs');
const { loadModel } = require('./tfjs_io');

async function main() {
  const [dir, inFile, outFile] = process.argv.slice(2);
  if (!outFile) {
    console.error('usage: predict.js MODEL_DIR input.json output.json');
    process.exit(2);
  }
  const model = await loadModel(dir);
  const inp = JSON.parse(fs.readFileSync(inFile));
  const y = model.predict(tf.tensor(inp.data, inp.shape));
  fs.writeFileSync(outFile, JSON.stringify({ shape: y.shape,
    data: Array.from(y.dataSync()) }));
}

main().catch(e => { console.error(e.message || e); process.exit(1); });
