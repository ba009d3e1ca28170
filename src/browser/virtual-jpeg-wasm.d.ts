// `virtual:jpeg-turbo-wasm` is made by the esbuild plugin in scripts/build-web.mjs: the bytes of
// @cwasm/jpeg-turbo's jpeg-turbo.wasm (libjpeg-turbo in WebAssembly), embedded in the bundle.
declare module 'virtual:jpeg-turbo-wasm' {
  const wasm: Uint8Array;
  export default wasm;
}
