import { familyById } from '../model/families';
import { allBlocks, type Block, type ModelStructure } from '../model/structure';

const key = (name: string) => (name.startsWith('module.') ? name.slice('module.'.length) : name);

/**
 * Gives the candidate's blocks the family, stride, groups and input channels the reference knows,
 * where the candidate only guessed them. A deploy state dict stores one conv per block and
 * nothing about how it is applied: 'rbr_reparam' is the deploy conv of RepVGG, YOLOv6 and YOLOv7
 * alike (whose activations differ), groups are inferred from neighbouring blocks (wrong when
 * another layer sits between them) and the stride is often unknown. The train form of the same
 * block pins these down (its branch names give the family; an identity branch means stride 1 and
 * fixes groups). Values stored in the candidate (module attributes) are kept. Returns a note per
 * block changed.
 */
export function adoptGeometry(candidate: ModelStructure, reference: ModelStructure, file: string): string[] {
  const known = new Map(allBlocks(reference).map((b) => [key(b.name), b]));
  const notes: string[] = [];
  for (const block of allBlocks(candidate)) {
    const ref = known.get(key(block.name));
    if (!ref || ref.outChannels !== block.outChannels || ref.kernel !== block.kernel) continue;
    const taken: string[] = [];
    const take = <K extends keyof Block>(field: K, value: Block[K]) => {
      if (block[field] === value) return;
      block[field] = value;
      taken.push(`${String(field)} ${String(value)}`);
    };
    if (block.form === 'deploy' && familyById(ref.family).deploy === familyById(block.family).deploy) take('family', ref.family);
    if (block.groupsSource !== 'attribute' && ref.inChannels / ref.groups === block.inChannels / block.groups) {
      take('groups', ref.groups);
      take('inChannels', ref.inChannels);
    }
    if (block.strideSource !== 'attribute' && ref.stride !== null) take('stride', ref.stride);
    if (taken.length > 0) notes.push(`${file}: ${block.name}: ${taken.join(', ')} taken from the reference (the file does not store them)`);
  }
  return notes;
}
