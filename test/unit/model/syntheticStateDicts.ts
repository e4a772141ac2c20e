import type { TensorMeta } from '../../../src/core/model/moduleIndex';

/** Tensor names and shapes of an upstream-style RepVGG state dict, built like the upstream constructor does. */
export function upstreamRepvggMetas(opts: {
  blocks: number[];
  widths: number[];
  groupsAt?: (layer: number) => number;
  deploy?: boolean;
  se?: boolean;
  classes?: number;
}): TensorMeta[] {
  const out: TensorMeta[] = [];
  const bn = (p: string, c: number) => {
    for (const n of ['weight', 'bias', 'running_mean', 'running_var']) out.push({ name: `${p}.${n}`, shape: [c] });
    out.push({ name: `${p}.num_batches_tracked`, shape: [] });
  };
  const block = (p: string, cin: number, cout: number, stride: number, groups: number) => {
    if (opts.deploy) {
      out.push({ name: `${p}.rbr_reparam.weight`, shape: [cout, cin / groups, 3, 3] }, { name: `${p}.rbr_reparam.bias`, shape: [cout] });
    } else {
      if (cin === cout && stride === 1) bn(`${p}.rbr_identity`, cin);
      out.push({ name: `${p}.rbr_dense.conv.weight`, shape: [cout, cin / groups, 3, 3] });
      bn(`${p}.rbr_dense.bn`, cout);
      out.push({ name: `${p}.rbr_1x1.conv.weight`, shape: [cout, cin / groups, 1, 1] });
      bn(`${p}.rbr_1x1.bn`, cout);
    }
    if (opts.se) {
      const mid = Math.floor(cout / 16);
      out.push({ name: `${p}.se.down.weight`, shape: [mid, cout, 1, 1] }, { name: `${p}.se.down.bias`, shape: [mid] });
      out.push({ name: `${p}.se.up.weight`, shape: [cout, mid, 1, 1] }, { name: `${p}.se.up.bias`, shape: [cout] });
    }
  };
  block('stage0', 3, opts.widths[0], 2, 1);
  let cin = opts.widths[0];
  let layer = 1;
  opts.blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++, layer++) {
      block(`stage${s + 1}.${b}`, cin, opts.widths[s + 1], b === 0 ? 2 : 1, opts.groupsAt?.(layer) ?? 1);
      cin = opts.widths[s + 1];
    }
  });
  out.push({ name: 'linear.weight', shape: [opts.classes ?? 1000, cin] }, { name: 'linear.bias', shape: [opts.classes ?? 1000] });
  return out;
}
