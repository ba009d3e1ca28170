// `virtual:shaders` is made by the esbuild plugin in scripts/build-web.mjs: every shaders/*.wgsl
// file as { name (file name without .wgsl): WGSL text }.
declare module 'virtual:shaders' {
  const shaders: Record<string, string>;
  export default shaders;
}
