// Reading and writing TensorFlow.js LayersModel folders from node with the
// pure-JS package (no tfjs-node, so no file:// handler): model.json plus
// weight files, through custom IOHandlers.
'use strict';
const fs = require('fs');
const path = require('path');
const tf = require('@tensorflow/tfjs');

// shards: {groups: k} splits the weights into k manifest groups,
// {files: k} splits one group's bytes into k files.
async function saveModel(model, dir, shards) {
  await model.save(tf.io.withSaveHandler(async (art) => {
    const data = Buffer.from(art.weightData);
    const specs = art.weightSpecs;
    const manifest = [];
    const bytes = s => 4 * s.shape.reduce((a, b) => a * b, 1);
    if (shards && shards.groups > 1) {
      const per = Math.ceil(specs.length / shards.groups);
      let off = 0;
      for (let g = 0; g * per < specs.length; g++) {
        const group = specs.slice(g * per, (g + 1) * per);
        const len = group.reduce((a, s) => a + bytes(s), 0);
        const file = `group${g + 1}-shard1of1.bin`;
        fs.writeFileSync(path.join(dir, file), data.subarray(off, off + len));
        manifest.push({ paths: [file], weights: group });
        off += len;
      }
    } else {
      const k = (shards && shards.files) || 1;
      const step = Math.ceil(data.length / k);
      const paths = [];
      for (let i = 0; i < k; i++) {
        const file = `group1-shard${i + 1}of${k}.bin`;
        fs.writeFileSync(path.join(dir, file),
          data.subarray(i * step, Math.min(data.length, (i + 1) * step)));
        paths.push(file);
      }
      manifest.push({ paths, weights: specs });
    }
    const json = {
      modelTopology: art.modelTopology,
      format: art.format,
      generatedBy: art.generatedBy,
      convertedBy: art.convertedBy,
      weightsManifest: manifest,
    };
    fs.writeFileSync(path.join(dir, 'model.json'), JSON.stringify(json));
    return { modelArtifactsInfo: { dateSaved: new Date(),
      modelTopologyType: 'JSON' } };
  }));
}

async function loadModel(dir) {
  const json = JSON.parse(fs.readFileSync(path.join(dir, 'model.json')));
  const specs = [];
  const parts = [];
  for (const group of json.weightsManifest) {
    specs.push(...group.weights);
    for (const p of group.paths) parts.push(fs.readFileSync(path.join(dir, p)));
  }
  const all = Buffer.concat(parts);
  const weightData = all.buffer.slice(all.byteOffset,
    all.byteOffset + all.length);
  return tf.loadLayersModel({
    load: async () => ({ modelTopology: json.modelTopology,
      weightSpecs: specs, weightData, format: json.format }),
  });
}

// A small seeded generator (mulberry32): fixtures do not depend on
// Math.random.
function rng(seed) {
  let a = seed >>> 0;
  return function () {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

module.exports = { saveModel, loadModel, rng };
