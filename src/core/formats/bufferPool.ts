/**
 * Large byte buffers that a conversion hands back once it is done with them, so the next
 * tensor reuses them. Memory the process has never touched is costly: every new page
 * faults in (on a VM often from the host), which for a few hundred MB of tensors costs
 * more than reading and fusing them. Reused buffers are not cleared: whoever takes one
 * fills every byte of it.
 *
 * With `poison` (on when REPLENS_POISON_RELEASED_BUFFERS=1, as in the tests) every buffer given
 * back is filled with 0xFF bytes, which read as NaN in every float type and as -1 in the integer
 * ones: a view still read after its release then shows up as garbage instead of passing by luck.
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  private readonly owned = new WeakSet<ArrayBuffer>();

  constructor(
    /** Smaller requests are left to the allocator; they are cheap and numerous. */
    private readonly minBytes = 256 * 1024,
    /** At most this many buffers wait for reuse; a conversion has a few in flight at once. */
    private readonly maxFree = 8,
    private readonly poison = process.env.REPLENS_POISON_RELEASED_BUFFERS === '1',
  ) {}

  /** `length` bytes, from a returned buffer when one is large enough and not wastefully so. */
  take(length: number): Uint8Array {
    if (length < this.minBytes) return new Uint8Array(length);
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      const size = this.free[i].byteLength;
      if (size >= length && size <= 4 * length && (best < 0 || size < this.free[best].byteLength)) best = i;
    }
    if (best >= 0) return new Uint8Array(this.free.splice(best, 1)[0], 0, length);
    const buffer = new ArrayBuffer(length);
    this.owned.add(buffer);
    return new Uint8Array(buffer);
  }

  /** Whether `view` lies in a buffer this pool handed out. */
  owns(view: ArrayBufferView): boolean {
    return this.owned.has(view.buffer as ArrayBuffer);
  }

  /** Hands back the buffer under `view`; the caller must not use any view of it afterwards. Foreign buffers are ignored. */
  give(view: ArrayBufferView): void {
    const buffer = view.buffer as ArrayBuffer;
    if (!this.owns(view) || this.free.includes(buffer)) return;
    if (this.poison) new Uint8Array(buffer).fill(0xff);
    this.free.push(buffer);
    if (this.free.length > this.maxFree) {
      // Keep the larger ones: a small request can use a large buffer, not the other way round.
      const smallest = this.free.reduce((s, b, i) => (b.byteLength < this.free[s].byteLength ? i : s), 0);
      this.free.splice(smallest, 1);
    }
  }
}
