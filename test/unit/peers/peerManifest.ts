import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';

/**
 * The manifests of test/fixtures/peers/<peer>/: what each family's own published code produced
 * (make_<peer>.py), read by the tests that compare RepLens with it.
 */

export const PEERS = path.join(__dirname, '..', '..', 'fixtures', 'peers');

/** A block as the peer's module objects describe it. */
export interface PeerBlock {
  name: string;
  kind: string;
  in: number;
  out: number;
  stride: number;
  groups: number;
  kernel: number;
  identity: boolean;
  kxk: number;
  scale: boolean;
  avgPool: boolean;
  postBn: boolean;
}

export interface PeerFixture {
  file: string;
  what: string;
  checkpoint: 'state_dict' | 'training' | 'whole-module' | 'onnx';
  dtype: 'float32' | 'float16';
  /** The top-level key the peer's own tools load; null for a bare state dict or ONNX. */
  weights: string | null;
  slots: string[];
  family: string;
  blocks: PeerBlock[];
  /** The peer's deploy-form state dict after its own reparameterization (float32); null for ONNX. */
  expected: string | null;
  /** {'input', 'output.0', …}: a seeded input and the peer's deploy-model output for it. */
  input?: string;
}

export interface PeerManifest {
  peer: string;
  repo: string;
  commit: string;
  oracle: string;
  fixtures: PeerFixture[];
  /** Full-size standard models, recorded without weights: every key with its shape, before and after the peer's reparameterization. */
  fullSize?: { file: string; what: string }[];
}

export function peerManifests(): PeerManifest[] {
  return readdirSync(PEERS)
    .filter((d) => existsSync(path.join(PEERS, d, 'manifest.json')))
    .map((d) => JSON.parse(readFileSync(path.join(PEERS, d, 'manifest.json'), 'utf8')) as PeerManifest);
}
