declare module 'node-gyp-build' {
  interface NodeGypBuild {
    (dir: string): unknown;
    /** Path of the binary node-gyp-build would load from `dir`; throws when there is none. */
    path(dir?: string): string;
  }
  const nodeGypBuild: NodeGypBuild;
  export default nodeGypBuild;
}
