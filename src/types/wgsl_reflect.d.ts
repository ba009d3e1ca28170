// wgsl_reflect's package "main" is a CommonJS build under "type": "module", which Node's ESM
// loader cannot import; its ES module build is imported by path and typed here.
declare module 'wgsl_reflect/wgsl_reflect.module.js' {
  export * from 'wgsl_reflect';
}
