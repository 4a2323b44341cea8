export {
  decodeSafetensors,
  encodeSafetensors,
  readSafetensorsFile,
  type SafetensorsContents,
  type SafetensorsDtype,
  type TensorRecord,
  type TypedArray,
  writeSafetensorsFile,
} from './safetensors.js';
