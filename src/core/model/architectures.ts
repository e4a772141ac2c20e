/**
 * The published RepVGG architectures, recognised by shape alone so that the
 * name is found whatever the file calls its modules.
 */
interface ArchitectureSpec {
  name: string;
  blocks: readonly [number, number, number, number];
  widthMultiplier: readonly [number, number, number, number];
  /** Groups of the grouped layers (every second block of stages 1-4, counted from 1). */
  groups: number;
  se: boolean;
}

const A = [2, 4, 14, 1] as const;
const B = [4, 6, 16, 1] as const;

const SPECS: readonly ArchitectureSpec[] = [
  { name: 'RepVGG-A0', blocks: A, widthMultiplier: [0.75, 0.75, 0.75, 2.5], groups: 1, se: false },
  { name: 'RepVGG-A1', blocks: A, widthMultiplier: [1, 1, 1, 2.5], groups: 1, se: false },
  { name: 'RepVGG-A2', blocks: A, widthMultiplier: [1.5, 1.5, 1.5, 2.75], groups: 1, se: false },
  { name: 'RepVGG-B0', blocks: B, widthMultiplier: [1, 1, 1, 2.5], groups: 1, se: false },
  { name: 'RepVGG-B1', blocks: B, widthMultiplier: [2, 2, 2, 4], groups: 1, se: false },
  { name: 'RepVGG-B1g2', blocks: B, widthMultiplier: [2, 2, 2, 4], groups: 2, se: false },
  { name: 'RepVGG-B1g4', blocks: B, widthMultiplier: [2, 2, 2, 4], groups: 4, se: false },
  { name: 'RepVGG-B2', blocks: B, widthMultiplier: [2.5, 2.5, 2.5, 5], groups: 1, se: false },
  { name: 'RepVGG-B2g4', blocks: B, widthMultiplier: [2.5, 2.5, 2.5, 5], groups: 4, se: false },
  { name: 'RepVGG-B3', blocks: B, widthMultiplier: [3, 3, 3, 5], groups: 1, se: false },
  { name: 'RepVGG-B3g4', blocks: B, widthMultiplier: [3, 3, 3, 5], groups: 4, se: false },
  { name: 'RepVGG-D2se', blocks: [8, 14, 24, 1], widthMultiplier: [2.5, 2.5, 2.5, 5], groups: 1, se: true },
];

/** What recognition looks at: per block in model order, its stage index, width, kernel-input width and SE. */
export interface ShapeSignatureBlock {
  stage: number;
  outChannels: number;
  /** Conv weight dim 1: in_channels / groups. */
  inPerGroup: number;
  se: boolean;
}

function expectedBlocks(spec: ArchitectureSpec): ShapeSignatureBlock[] {
  const widths = [
    Math.min(64, 64 * spec.widthMultiplier[0]),
    64 * spec.widthMultiplier[0],
    128 * spec.widthMultiplier[1],
    256 * spec.widthMultiplier[2],
    512 * spec.widthMultiplier[3],
  ];
  const out: ShapeSignatureBlock[] = [{ stage: 0, outChannels: widths[0], inPerGroup: 3, se: spec.se }];
  let inChannels = widths[0];
  let layer = 1;
  spec.blocks.forEach((count, s) => {
    for (let b = 0; b < count; b++, layer++) {
      const groups = layer % 2 === 0 && layer <= 26 ? spec.groups : 1;
      out.push({ stage: s + 1, outChannels: widths[s + 1], inPerGroup: inChannels / groups, se: spec.se });
      inChannels = widths[s + 1];
    }
  });
  return out;
}

/** The upstream name of a RepVGG-shaped model, or 'custom'. */
export function recogniseArchitecture(blocks: readonly ShapeSignatureBlock[]): string {
  for (const spec of SPECS) {
    const want = expectedBlocks(spec);
    if (want.length !== blocks.length) continue;
    const same = want.every((w, i) => {
      const b = blocks[i];
      return b.stage === w.stage && b.outChannels === w.outChannels && b.inPerGroup === w.inPerGroup && b.se === w.se;
    });
    if (same) return spec.name;
  }
  return 'custom';
}
