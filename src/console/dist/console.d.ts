/** The built bundle, imported only `with { type: "file" }` (src/api/console.ts): its path. */
declare const path: string;
export default path;
