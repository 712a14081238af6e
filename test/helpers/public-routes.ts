// The public routes of running Herald servers, read from their own /openapi.json, so tests that
// walk every route cover new routes without being edited.

/** The subset of JSON Schema (as @fastify/swagger renders TypeBox in OpenAPI 3.0) tests read. */
export interface JsonSchema {
  type?: string;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  anyOf?: JsonSchema[];
  enum?: unknown[];
  nullable?: boolean;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  default?: unknown;
}

export interface RouteParameter {
  in: 'path' | 'query' | 'header' | 'cookie';
  name: string;
  required?: boolean;
  schema: JsonSchema;
}

export interface PublicRoute {
  /** The server's base URL, e.g. http://127.0.0.1:41234. */
  base: string;
  /** Which server: the OpenAPI title, e.g. "Herald API". */
  server: string;
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** OpenAPI path template, e.g. /v1/users/{userId}. */
  path: string;
  parameters: RouteParameter[];
  body: JsonSchema | undefined;
  /** The route declares `security: []`: no API key needed. */
  isOpen: boolean;
}

interface OpenApiOperation {
  parameters?: RouteParameter[];
  requestBody?: { content?: Record<string, { schema?: JsonSchema }> };
  security?: unknown[];
}

interface OpenApiDocument {
  info: { title: string };
  paths: Record<string, Record<string, OpenApiOperation>>;
}

const methods = ['get', 'post', 'put', 'patch', 'delete'] as const;

/** `token`: the OPS_TOKEN, when the servers were started with one (it guards /openapi.json). */
export async function publicRoutes(
  bases: string[],
  options: { token?: string } = {},
): Promise<PublicRoute[]> {
  const routes: PublicRoute[] = [];
  const headers: Record<string, string> =
    options.token === undefined ? {} : { authorization: `Bearer ${options.token}` };
  for (const base of bases) {
    const response = await fetch(`${base}/openapi.json`, { headers });
    if (response.status !== 200) throw new Error(`${base}/openapi.json answered ${String(response.status)}`);
    const doc = (await response.json()) as OpenApiDocument;
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of methods) {
        const operation = item[method];
        if (operation === undefined) continue;
        routes.push({
          base,
          server: doc.info.title,
          method: method.toUpperCase() as PublicRoute['method'],
          path,
          parameters: operation.parameters ?? [],
          body: operation.requestBody?.content?.['application/json']?.schema,
          isOpen: Array.isArray(operation.security) && operation.security.length === 0,
        });
      }
    }
  }
  return routes;
}
