// Limits on what the sources accept, checked before an object reaches the
// model (and, for manifest files, before the YAML is parsed): a proxy in the
// path of every connection must not let one hostile file or object exhaust its
// heap or stall its event loop (issue 12: a 50 MB EndpointSlice ran the heap
// out of memory; a 54,000-key mapping held the event loop for 76 s, because
// the yaml library's duplicate-key check makes mapping parse time quadratic).
//
// Each default is far above what a real cluster produces, and is tied to a
// limit the API server already enforces where there is one.

export interface InputLimits {
  /** Bytes per manifest file; larger files are not read at all. */
  manifestMaxBytes: number;
  /** YAML documents per manifest file. */
  manifestMaxDocuments: number;
  /** Keys in one mapping (object), in a file or from the API. */
  objectMaxKeys: number;
  /** Nesting depth of mappings and sequences. */
  objectMaxDepth: number;
  /** Characters in one string (key or value). */
  objectMaxStringLength: number;
  /** Endpoints in one EndpointSlice. */
  objectMaxEndpoints: number;
}

export const DEFAULT_INPUT_LIMITS: Readonly<InputLimits> = {
  // kube-apiserver refuses request bodies over 3 MiB and etcd stores objects of
  // at most 1.5 MiB; a file may hold several objects, hence some room.
  manifestMaxBytes: 8 * 1024 * 1024,
  manifestMaxDocuments: 10_000,
  // Kubernetes sets no key count, but caps all annotations of an object at
  // 256 KiB; no Service, EndpointSlice or Node has thousands of keys at one level.
  objectMaxKeys: 4096,
  // A Service or Node nests about 6 deep.
  objectMaxDepth: 64,
  // The annotation cap (256 KiB, TotalAnnotationSizeLimitB) bounds any one value.
  objectMaxStringLength: 256 * 1024,
  // kube-apiserver's EndpointSlice validation (maxEndpoints = 1000).
  objectMaxEndpoints: 1000,
};

/** The flag that sets each limit, named in every rejection. */
export const INPUT_LIMIT_FLAGS: Readonly<Record<keyof InputLimits, string>> = {
  manifestMaxBytes: '--manifest-max-bytes',
  manifestMaxDocuments: '--manifest-max-documents',
  objectMaxKeys: '--object-max-keys',
  objectMaxDepth: '--object-max-depth',
  objectMaxStringLength: '--object-max-string-length',
  objectMaxEndpoints: '--object-max-endpoints',
};

/** "exceeds the limit of 4096 keys per mapping (found 54000; --object-max-keys)". */
export function limitExceeded(limit: keyof InputLimits, value: number, what: string, found: string): string {
  return `exceeds the limit of ${value} ${what} (${found}; raise ${INPUT_LIMIT_FLAGS[limit]} if this is intended)`;
}
