/** Files src/api/console.ts embeds `with { type: "file" }`: the import is the file's path. */
declare module "*.css" {
  const path: string;
  export default path;
}
declare module "*.svg" {
  const path: string;
  export default path;
}
