// openapi.yaml is imported with `{ type: 'text' }` so that a compiled binary embeds the contract.
declare module '*.yaml' {
  const text: string;
  export default text;
}

// Swagger UI's assets are imported with `{ type: 'file' }`: the import is a path to the file.
declare module 'swagger-ui-dist/swagger-ui-bundle.js' {
  const path: string;
  export default path;
}
declare module 'swagger-ui-dist/swagger-ui.css' {
  const path: string;
  export default path;
}

// PGlite's runtime files, imported with `{ type: 'file' }` so a compiled binary embeds them.
declare module '*.wasm' {
  const path: string;
  export default path;
}
declare module '*.data' {
  const path: string;
  export default path;
}
declare module '*.tar.gz' {
  const path: string;
  export default path;
}

// The OTLP .proto definitions, imported with `{ type: 'text' }` so a compiled binary embeds them.
declare module '*.proto' {
  const text: string;
  export default text;
}
