// Builds the TensorFlow.js fixtures under tests/fixtures/tfjs/: models
// made and saved by TensorFlow.js itself (pure JS CPU backend), with
// inputs and TensorFlow.js' predictions, for the engine to load and match.
//   node tests/tfjs/make_fixtures.js [out_dir]
// The files are committed; rerun only to change the fixtures.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');
const { saveModel, rng } = require('./tfjs_io');

const outDir = process.argv[2] ||
  path.join(__dirname, '..', 'fixtures', 'tfjs');

function randomInputs(shape, n, r) {
  const per = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n * per);
  for (let i = 0; i < data.length; i++) data[i] = r() * 2 - 1;
  return tf.tensor(data, [n, ...shape]);
}

// Weights from our own seeded generator: the fixture does not depend on
// TensorFlow.js' initializer internals.
function seedWeights(model, r) {
  model.setWeights(model.getWeights().map(w =>
    tf.tensor(Float32Array.from({ length: w.size }, () => (r() - 0.5) * 0.6),
      w.shape)));
}

function tensorJson(t) {
  return { shape: t.shape, data: Array.from(t.dataSync()) };
}

async function fixture(name, model, inShape, n, seed, shards) {
  const r = rng(seed);
  seedWeights(model, r);
  const x = randomInputs(inShape, n, r);
  const y = model.predict(x);
  const dir = path.join(outDir, name);
  fs.mkdirSync(dir, { recursive: true });
  await saveModel(model, dir, shards);
  fs.writeFileSync(path.join(dir, 'input.json'), JSON.stringify(tensorJson(x)));
  fs.writeFileSync(path.join(dir, 'expected.json'),
    JSON.stringify(tensorJson(y)));
  console.log(`${name}: ${model.countParams()} parameters, ` +
              `${n} samples -> ${y.shape}`);
}

async function main() {
  // An MLP as the demo task's, smaller: weights in two manifest groups.
  const mlp = tf.sequential({ name: 'mlp' });
  mlp.add(tf.layers.flatten({ inputShape: [28, 28] }));
  mlp.add(tf.layers.dense({ units: 32, activation: 'relu' }));
  mlp.add(tf.layers.dense({ units: 10 }));
  await fixture('mlp', mlp, [28, 28], 8, 1, { groups: 2 });

  // A CNN: Conv2D (same, valid, strides), MaxPooling2D, Dropout, softmax;
  // weights in one group of three files.
  const cnn = tf.sequential({ name: 'cnn' });
  cnn.add(tf.layers.conv2d({ inputShape: [16, 16, 2], filters: 6,
    kernelSize: 3, padding: 'same', activation: 'relu' }));
  cnn.add(tf.layers.maxPooling2d({ poolSize: 2 }));
  cnn.add(tf.layers.conv2d({ filters: 5, kernelSize: [3, 2], strides: [2, 1],
    activation: 'tanh' }));
  cnn.add(tf.layers.maxPooling2d({ poolSize: 3, strides: 2, padding: 'same' }));
  cnn.add(tf.layers.dropout({ rate: 0.25 }));
  cnn.add(tf.layers.flatten());
  cnn.add(tf.layers.dense({ units: 10, activation: 'softmax' }));
  await fixture('cnn', cnn, [16, 16, 2], 6, 2, { files: 3 });

  // A small tabular model with a sigmoid output.
  const tab = tf.sequential({ name: 'tabular' });
  tab.add(tf.layers.dense({ inputShape: [5], units: 8, activation: 'tanh' }));
  tab.add(tf.layers.dense({ units: 4, activation: 'relu' }));
  tab.add(tf.layers.dense({ units: 1, activation: 'sigmoid' }));
  await fixture('tabular', tab, [5], 16, 3, {});

  // A functional (tf.model) chain with an InputLayer and an Activation.
  const inp = tf.input({ shape: [6] });
  let h = tf.layers.dense({ units: 7, activation: 'sigmoid' }).apply(inp);
  h = tf.layers.dense({ units: 3 }).apply(h);
  h = tf.layers.activation({ activation: 'softmax' }).apply(h);
  const fn = tf.model({ inputs: inp, outputs: h, name: 'functional' });
  await fixture('functional', fn, [6], 5, 4, {});
}

main().catch(e => { console.error(e); process.exit(1); });
