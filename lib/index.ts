export { HeartwatchError } from './errors.js';
export type { NativeInfo, NativeUnavailable } from './native/native-info.js';
export { nativeInfo } from './native/native-info.js';
