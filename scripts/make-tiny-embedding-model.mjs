// Writes a tiny BERT-shaped ONNX embedding model plus WordPiece tokenizer files, so the
// transformers.js embedder can be tested offline. Usage: node scripts/make-tiny-embedding-model.mjs [outRoot]
//
// Graph (opset 13): last_hidden_state = tanh(tok_emb[input_ids] + type_emb[token_type_ids]) * mask,
// shape [batch, sequence, DIM]; weights come from a seeded PRNG so the output is reproducible.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;
const here = path.dirname(fileURLToPath(import.meta.url));
const OUT_ROOT = process.argv[2] ?? path.join(here, '..', 'test', 'fixtures', 'tiny-embedder');
const MODEL_ID = 'switchyard/tiny-embedder';
const DIM = 32;

const SPECIAL = ['[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]'];
const WORDS = ('the a an is are to of in and or for with what how why who where when can you i my me ' +
  'it this that write explain python code function list linked reverse sort data sql query table ' +
  'math prove equation cake recipe chocolate bake bread weather today hello thanks please translate ' +
  'english chinese french story poem email business market health doctor sleep').split(' ');
const CHARS = 'abcdefghijklmnopqrstuvwxyz0123456789'.split('');
const PUNCT = '.,?!\'"-:;()'.split('');
const HAN = '的一是不了人我在有他这中大来上个国到说们为子和你地出道也时年如何用写反转链表代码巧克力蛋糕怎么做翻译数学证明'.split('');
const VOCAB = [...new Set([...SPECIAL, ...WORDS, ...CHARS, ...CHARS.map((c) => '##' + c), ...PUNCT, ...HAN])];

/** mulberry32: small deterministic PRNG. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function floatTensor(name, dims, rand) {
  const size = dims.reduce((a, b) => a * b, 1);
  const data = new Float32Array(size);
  for (let i = 0; i < size; i++) data[i] = (rand() - 0.5) * 2;
  return onnx.TensorProto.create({
    name, dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: Buffer.from(data.buffer),
  });
}

function int64Tensor(name, values) {
  const data = BigInt64Array.from(values.map(BigInt));
  return onnx.TensorProto.create({
    name, dims: [values.length], dataType: onnx.TensorProto.DataType.INT64, rawData: Buffer.from(data.buffer),
  });
}

function valueInfo(name, elemType, dims) {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType,
        shape: onnx.TensorShapeProto.create({
          dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

function node(opType, inputs, outputs, attribute = []) {
  return onnx.NodeProto.create({ opType, input: inputs, output: outputs, name: outputs[0] + '_node', attribute });
}

function buildModel() {
  const rand = prng(20240601);
  const INT64 = onnx.TensorProto.DataType.INT64;
  const FLOAT = onnx.TensorProto.DataType.FLOAT;
  const graph = onnx.GraphProto.create({
    name: 'tiny_embedder',
    initializer: [
      floatTensor('tok_emb', [VOCAB.length, DIM], rand),
      floatTensor('type_emb', [2, DIM], rand),
      int64Tensor('last_axis', [-1]),
    ],
    node: [
      node('Gather', ['tok_emb', 'input_ids'], ['tok']),
      node('Gather', ['type_emb', 'token_type_ids'], ['typ']),
      node('Add', ['tok', 'typ'], ['summed']),
      node('Tanh', ['summed'], ['hidden']),
      node('Cast', ['attention_mask'], ['mask_f'], [
        onnx.AttributeProto.create({ name: 'to', type: onnx.AttributeProto.AttributeType.INT, i: FLOAT }),
      ]),
      node('Unsqueeze', ['mask_f', 'last_axis'], ['mask_3d']),
      node('Mul', ['hidden', 'mask_3d'], ['last_hidden_state']),
    ],
    input: [
      valueInfo('input_ids', INT64, ['batch', 'sequence']),
      valueInfo('attention_mask', INT64, ['batch', 'sequence']),
      valueInfo('token_type_ids', INT64, ['batch', 'sequence']),
    ],
    output: [valueInfo('last_hidden_state', FLOAT, ['batch', 'sequence', DIM])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 7,
    producerName: 'switchyard-make-tiny-embedding-model',
    opsetImport: [onnx.OperatorSetIdProto.create({ domain: '', version: 13 })],
    graph,
  });
  return Buffer.from(onnx.ModelProto.encode(model).finish());
}

function tokenizerJson() {
  const vocab = Object.fromEntries(VOCAB.map((t, i) => [t, i]));
  const special = (t) => ({ id: t, ids: [vocab[t]], tokens: [t] });
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: SPECIAL.map((t) => ({
      id: vocab[t], content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true,
    })),
    normalizer: { type: 'BertNormalizer', clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
    pre_tokenizer: { type: 'BertPreTokenizer' },
    post_processor: {
      type: 'TemplateProcessing',
      single: [{ SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } }],
      pair: [
        { SpecialToken: { id: '[CLS]', type_id: 0 } }, { Sequence: { id: 'A', type_id: 0 } }, { SpecialToken: { id: '[SEP]', type_id: 0 } },
        { Sequence: { id: 'B', type_id: 1 } }, { SpecialToken: { id: '[SEP]', type_id: 1 } },
      ],
      special_tokens: { '[CLS]': special('[CLS]'), '[SEP]': special('[SEP]') },
    },
    decoder: { type: 'WordPiece', prefix: '##', cleanup: true },
    model: { type: 'WordPiece', unk_token: '[UNK]', continuing_subword_prefix: '##', max_input_chars_per_word: 100, vocab },
  };
}

const tokenizerConfig = {
  tokenizer_class: 'BertTokenizer', do_lower_case: true, model_max_length: 128,
  cls_token: '[CLS]', sep_token: '[SEP]', pad_token: '[PAD]', unk_token: '[UNK]', mask_token: '[MASK]',
};

const config = {
  model_type: 'bert', architectures: ['BertModel'], hidden_size: DIM, vocab_size: VOCAB.length,
  max_position_embeddings: 128, num_attention_heads: 1, num_hidden_layers: 0, intermediate_size: DIM,
  type_vocab_size: 2, pad_token_id: 0,
};

const dir = path.join(OUT_ROOT, ...MODEL_ID.split('/'));
fs.mkdirSync(path.join(dir, 'onnx'), { recursive: true });
const model = buildModel();
// Not really quantised: the same float graph under both names, so either `quantized` setting loads.
fs.writeFileSync(path.join(dir, 'onnx', 'model.onnx'), model);
fs.writeFileSync(path.join(dir, 'onnx', 'model_quantized.onnx'), model);
fs.writeFileSync(path.join(dir, 'tokenizer.json'), JSON.stringify(tokenizerJson(), null, 1) + '\n');
fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify(tokenizerConfig, null, 2) + '\n');
fs.writeFileSync(path.join(dir, 'config.json'), JSON.stringify(config, null, 2) + '\n');
console.log(`wrote ${MODEL_ID} (vocab ${VOCAB.length}, dim ${DIM}, onnx ${model.length} bytes) to ${dir}`);
