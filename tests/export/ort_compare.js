// Runs an exported ONNX model in ONNX Runtime (onnxruntime-node) on every
// image of a raw dump and compares its probabilities with `mnist-dist
// predict --probs` output: each within TOL and every argmax the same.
// usage: node ort_compare.js MODEL.onnx IMAGES.u8 PREDICTIONS.csv [TOL]
// IMAGES.u8 (export_check.py dump): "MNU8", then N, H, W, C as uint32 LE,
// then N*H*W*C bytes, each image channels-last (as the trainer reads them).
'use strict';
const fs = require('fs');
const ort = require('onnxruntime-node');

function readImages(path) {
  const buf = fs.readFileSync(path);
  if (buf.toString('latin1', 0, 4) !== 'MNU8') throw new Error(`${path}: not an image dump`);
  const [n, h, w, c] = [4, 8, 12, 16].map((o) => buf.readUInt32LE(o));
  return {n, h, w, c, pixels: buf.subarray(20, 20 + n * h * w * c)};
}

function readPredictions(path) {
  const lines = fs.readFileSync(path, 'utf8').trim().split('\n');
  const header = lines[0].split(',');
  if (header[0] !== 'ImageId' || header[1] !== 'Label' || header[2] !== 'p0')
    throw new Error(`${path}: not predict --probs output`);
  return lines.slice(1).map((l) => l.split(',').map(Number));
}

async function main() {
  const [model, images, preds, tolText] = process.argv.slice(2);
  const tol = Number(tolText || '1e-5');
  const im = readImages(images);
  const want = readPredictions(preds);
  if (want.length !== im.n) throw new Error(`${preds}: ${want.length} rows for ${im.n} images`);
  const session = await ort.InferenceSession.create(model);
  if (session.inputNames.join() !== 'input' || session.outputNames.join() !== 'probabilities')
    throw new Error(`inputs ${session.inputNames}, outputs ${session.outputNames}`);
  const inv255 = Math.fround(1 / 255); // the trainer scales by a float reciprocal
  const px = im.h * im.w * im.c, batch = 1000;
  let worst = 0, worstAt = -1, argmaxDiffer = 0, classes = 0;
  for (let start = 0; start < im.n; start += batch) {
    const n = Math.min(batch, im.n - start);
    const x = new Float32Array(n * px); // NCHW
    for (let i = 0; i < n; i++)
      for (let y = 0; y < im.h; y++)
        for (let xx = 0; xx < im.w; xx++)
          for (let ch = 0; ch < im.c; ch++) {
            const p = im.pixels[(start + i) * px + (y * im.w + xx) * im.c + ch];
            x[i * px + (ch * im.h + y) * im.w + xx] = Math.fround(p * inv255);
          }
    const out = await session.run({input: new ort.Tensor('float32', x, [n, im.c, im.h, im.w])});
    const p = out.probabilities;
    classes = p.dims[1];
    if (p.dims[0] !== n || classes !== want[0].length - 2)
      throw new Error(`output dims ${p.dims}, expected [${n}, ${want[0].length - 2}]`);
    for (let i = 0; i < n; i++) {
      const row = want[start + i];
      let arg = 0;
      for (let k = 0; k < classes; k++) {
        const v = p.data[i * classes + k];
        if (v > p.data[i * classes + arg]) arg = k;
        const d = Math.abs(v - row[2 + k]);
        if (!(d <= worst)) { worst = d; worstAt = start + i; }
      }
      if (arg !== row[1]) argmaxDiffer++;
    }
  }
  console.log(`${model}: ${im.n} images ${im.h}x${im.w}x${im.c}, ${classes} classes: ` +
              `largest probability difference ${worst.toExponential(2)} (image ${worstAt + 1}), ` +
              `${argmaxDiffer} argmax differences`);
  if (!(worst <= tol) || argmaxDiffer) {
    console.log(`FAIL: tolerance ${tol}, argmax must agree everywhere`);
    process.exit(1);
  }
}

main().catch((err) => { console.log(`FAIL: ${err.message}`); process.exit(1); });
