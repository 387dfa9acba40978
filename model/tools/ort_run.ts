// Run an ONNX model with onnxruntime-node on inputs from JSON; used by model/*.py for checks and benchmarks.
//   npx tsx model/tools/ort_run.ts request.json response.json
// request: {"model": path, "threads": 2, "repeat": 1, "runs": [{"name": {"type": "float32"|"int64", "dims": [...], "data": [...]}}]}
// response: {"outputs": [{"name": {"dims": [...], "data": [...]}}], "ms": [per-run ms of the last repeat...]}
import * as ort from 'onnxruntime-node';
import { readFileSync, writeFileSync } from 'node:fs';

const req = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const sess = await ort.InferenceSession.create(req.model, {
  intraOpNumThreads: req.threads ?? 2, interOpNumThreads: 1, graphOptimizationLevel: 'all',
});
const outputs: any[] = [];
const ms: number[] = [];
for (const run of req.runs) {
  const feeds: Record<string, ort.Tensor> = {};
  for (const [k, v] of Object.entries<any>(run)) {
    feeds[k] = v.type === 'int64'
      ? new ort.Tensor('int64', BigInt64Array.from(v.data.map((x: number) => BigInt(x))), v.dims)
      : new ort.Tensor('float32', Float32Array.from(v.data), v.dims);
  }
  let res: any;
  const reps = req.repeat ?? 1;
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    res = await sess.run(feeds);
    ms.push(performance.now() - t0);
  }
  const o: any = {};
  if (!req.no_outputs) for (const [k, t] of Object.entries<any>(res)) o[k] = { dims: t.dims, data: Array.from(t.data as Float32Array) };
  outputs.push(o);
}
writeFileSync(process.argv[3], JSON.stringify({ outputs, ms }));
