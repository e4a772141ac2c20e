import { describe, expect, it } from 'vitest';
import { blocksPart, onnxPart, shapeChannelsMessage } from '../../../src/core/parity/scope';

/*
 * What part of a model a parity check runs, and what --shape means for it. A detector's layers
 * between and around its blocks are code, not data: the user must hear that RepLens runs the
 * blocks, and a --shape meant for the image must be answered with the shape the blocks take.
 */

const HEADS = [
  { name: 'model.102', family: 'yolov7-repconv' as const, inChannels: 128 },
  { name: 'model.103', family: 'yolov7-repconv' as const, inChannels: 256 },
  { name: 'model.104', family: 'yolov7-repconv' as const, inChannels: 512 },
];

describe('the checked part in one sentence', () => {
  it('blockwise detector blocks', () => {
    const part = blocksPart({ topology: 'blockwise', blocks: HEADS, othersInFile: true, source: 'checkpoint' });
    expect(part.sentence).toBe("checks the 3 RepConv blocks, each on its own input; the detector's other layers are not in the file as a graph");
    expect(part.shapeUse).toBe(
      "--shape describes the blocks' inputs, not the image the whole model takes: its batch, height and width are used for every block's input, " +
        'each block with its own channels (model.102 128, model.103 256, model.104 512), and its channels must be those of the first block, model.102: [batch, 128, height, width]',
    );
    expect(part.inputs).toEqual([
      { block: 'model.102', channels: 128 },
      { block: 'model.103', channels: 256 },
      { block: 'model.104', channels: 512 },
    ]);
  });

  it('a chain, a classifier, a file of blocks only, an ONNX graph', () => {
    expect(blocksPart({ topology: 'chain', blocks: HEADS, othersInFile: true, source: 'checkpoint' }).sentence).toBe(
      "checks the 3 RepConv blocks as one chain, from the input of model.102; the detector's other layers are not in the file as a graph",
    );
    const repvgg = [
      { name: 'stage0', family: 'repvgg' as const, inChannels: 3 },
      { name: 'stage1.0', family: 'repvgg' as const, inChannels: 8 },
    ];
    expect(blocksPart({ topology: 'classifier', blocks: repvgg, head: 'linear', othersInFile: false, source: 'checkpoint' }).sentence).toBe(
      'checks the whole model: the 2 RepVGG blocks in a chain, then the classifier (linear)',
    );
    expect(blocksPart({ topology: 'chain', blocks: repvgg, othersInFile: true, source: 'checkpoint' }).sentence).toBe(
      "checks the 2 RepVGG blocks as one chain, from the input of stage0; the model's other layers are not in the file as a graph",
    );
    expect(blocksPart({ topology: 'blockwise', blocks: [HEADS[0]], othersInFile: false, source: 'checkpoint' }).sentence).toBe(
      'checks the RepConv block, each on its own input; the file holds no other layers',
    );
    expect(blocksPart({ topology: 'chain', blocks: HEADS, othersInFile: true, source: 'onnx' }).sentence).toContain(
      "the graph's other layers are not part of this check",
    );
    expect(onnxPart('m.onnx', 7).sentence).toBe('checks the whole ONNX graph, as it is and with its 7 blocks fused in place');
    expect(onnxPart('m.onnx', undefined).sentence).toBe('checks the whole ONNX graph of m.onnx, as it is');
  });
});

describe('a --shape whose channels contradict the first input', () => {
  it('blockwise: names the first block and its channels, says how --shape is used, and what to pass', () => {
    const part = blocksPart({ topology: 'blockwise', blocks: HEADS, othersInFile: true, source: 'checkpoint' });
    expect(shapeChannelsMessage(part, [1, 3, 64, 64])).toBe(
      '--shape 1,3,64,64 asks for 3 channels, but the part of the model this check runs starts at model.102, a RepConv block that takes 128 channels. ' +
        "RepLens checks the 3 RepConv blocks, each on its own input; the detector's other layers are not in the file as a graph. " +
        "--shape describes the blocks' inputs, not the image the whole model takes: its batch, height and width are used for every block's input, " +
        'each block with its own channels (model.102 128, model.103 256, model.104 512), and its channels must be those of the first block, model.102: [batch, 128, height, width]. ' +
        'Pass --shape 1,128,64,64',
    );
  });

  it('chain: the input of the first block, not the image', () => {
    const part = blocksPart({ topology: 'chain', blocks: HEADS, othersInFile: true, source: 'checkpoint' });
    expect(shapeChannelsMessage(part, [2, 3, 640, 640])).toBe(
      '--shape 2,3,640,640 asks for 3 channels, but the part of the model this check runs starts at model.102, a RepConv block that takes 128 channels. ' +
        "RepLens checks the 3 RepConv blocks as one chain, from the input of model.102; the detector's other layers are not in the file as a graph. " +
        '--shape describes the input of model.102, the first block of the chain, not the image the whole model takes: [batch, 128, height, width]. ' +
        'Pass --shape 2,128,640,640',
    );
  });

  it('nothing to explain when the channels agree, or for an ONNX graph (its own input names the dimension)', () => {
    const part = blocksPart({ topology: 'blockwise', blocks: HEADS, othersInFile: true, source: 'checkpoint' });
    expect(shapeChannelsMessage(part, [4, 128, 16, 16])).toBeUndefined();
    expect(shapeChannelsMessage(onnxPart('m.onnx', 3), [1, 4, 32, 32])).toBeUndefined();
  });
});
