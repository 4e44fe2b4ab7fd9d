/**
 * gRPC server reflection, v1 and v1alpha (older clients and gateways only speak v1alpha), from
 * protobuf-es descriptors. The two versions have identical messages under different package
 * names, so one index answers both.
 *
 * Every file descriptor answer carries the file and all its transitive dependencies. grpc-go
 * leaves out files it already sent on the same stream; sending them again costs a few
 * kilobytes and keeps each answer self-contained for clients that do not cache across
 * requests.
 */
import type { DescEnum, DescExtension, DescFile, DescMessage } from "@bufbuild/protobuf";
import { toBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { Code, type HandlerContext, type ServiceImpl } from "@connectrpc/connect";
import type { ServerReflection as ServerReflectionV1 } from "../../gen/grpc/reflection/v1/reflection_pb.js";
import type { ServerReflection as ServerReflectionV1alpha } from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";

export interface ReflectionServiceOptions {
  /**
   * Files whose services are listed. Their dependencies are served too, but services defined
   * only in dependencies are not listed (they are not necessarily served).
   */
  files: readonly DescFile[];
}

export interface ReflectionServices {
  readonly v1: ServiceImpl<typeof ServerReflectionV1>;
  readonly v1alpha: ServiceImpl<typeof ServerReflectionV1alpha>;
}

/** The request oneof, common to both versions. */
export type ReflectionQuery =
  | { case: "fileByFilename"; value: string }
  | { case: "fileContainingSymbol"; value: string }
  | { case: "fileContainingExtension"; value: { containingType: string; extensionNumber: number } }
  | { case: "allExtensionNumbersOfType"; value: string }
  | { case: "listServices"; value: string }
  | { case: undefined; value?: undefined };

/** The response oneof, common to both versions. */
export type ReflectionAnswer =
  | { case: "fileDescriptorResponse"; value: { fileDescriptorProto: Uint8Array[] } }
  | { case: "allExtensionNumbersResponse"; value: { baseTypeName: string; extensionNumber: number[] } }
  | { case: "listServicesResponse"; value: { service: { name: string }[] } }
  | { case: "errorResponse"; value: { errorCode: number; errorMessage: string } };

export function createReflectionServices(options: ReflectionServiceOptions): ReflectionServices {
  const index = createReflectionIndex(options.files);
  return {
    v1: {
      serverReflectionInfo: (requests, context) => answerAll(index, requests, context),
    },
    v1alpha: {
      serverReflectionInfo: (requests, context) => answerAll(index, requests, context),
    },
  };
}

async function* answerAll<Req extends { host: string; messageRequest: ReflectionQuery }>(
  index: ReflectionIndex,
  requests: AsyncIterable<Req>,
  context: HandlerContext,
) {
  for await (const request of requests) {
    if (context.signal.aborted) return;
    yield { validHost: request.host, originalRequest: request, messageResponse: index.answer(request.messageRequest) };
  }
}

export interface ReflectionIndex {
  answer(query: ReflectionQuery): ReflectionAnswer;
}

export function createReflectionIndex(files: readonly DescFile[]): ReflectionIndex {
  const byName = new Map<string, DescFile>();
  const addFile = (file: DescFile) => {
    if (byName.has(file.proto.name)) return;
    byName.set(file.proto.name, file);
    file.dependencies.forEach(addFile);
  };
  files.forEach(addFile);

  const symbols = new Map<string, DescFile>();
  const messages = new Set<string>();
  const extensions = new Map<string, Map<number, DescFile>>();

  const addExtension = (ext: DescExtension, file: DescFile) => {
    symbols.set(ext.typeName, file);
    let numbers = extensions.get(ext.extendee.typeName);
    if (numbers === undefined) extensions.set(ext.extendee.typeName, (numbers = new Map()));
    numbers.set(ext.number, file);
  };
  const addEnum = (e: DescEnum, file: DescFile) => {
    symbols.set(e.typeName, file);
    // Protobuf scopes enum values as siblings of their enum ("pkg.VALUE"), which is what
    // protoc and grpc-go resolve; "pkg.Enum.VALUE" is what people type, so both are found.
    const scope = e.typeName.slice(0, e.typeName.length - e.name.length);
    for (const v of e.values) {
      symbols.set(scope + v.name, file);
      symbols.set(`${e.typeName}.${v.name}`, file);
    }
  };
  const addMessage = (m: DescMessage, file: DescFile) => {
    symbols.set(m.typeName, file);
    messages.add(m.typeName);
    for (const field of m.fields) {
      symbols.set(`${m.typeName}.${field.name}`, file);
      // Map entries are synthetic nested messages, absent from nestedMessages.
      if (field.fieldKind === "map") symbols.set(field.proto.typeName.replace(/^\./, ""), file);
    }
    for (const oneof of m.oneofs) symbols.set(`${m.typeName}.${oneof.name}`, file);
    for (const nested of m.nestedMessages) addMessage(nested, file);
    for (const nested of m.nestedEnums) addEnum(nested, file);
    for (const ext of m.nestedExtensions) addExtension(ext, file);
  };
  for (const file of byName.values()) {
    for (const service of file.services) {
      symbols.set(service.typeName, file);
      for (const method of service.methods) symbols.set(`${service.typeName}.${method.name}`, file);
    }
    for (const m of file.messages) addMessage(m, file);
    for (const e of file.enums) addEnum(e, file);
    for (const ext of file.extensions) addExtension(ext, file);
  }

  const serviceNames = [...new Set(files.flatMap((f) => f.services.map((s) => s.typeName)))].sort();

  const encoded = new Map<DescFile, Uint8Array>();
  const encode = (file: DescFile): Uint8Array => {
    let bytes = encoded.get(file);
    if (bytes === undefined) encoded.set(file, (bytes = toBinary(FileDescriptorProtoSchema, file.proto)));
    return bytes;
  };
  const withDependencies = new Map<DescFile, Uint8Array[]>();
  const fileAnswer = (file: DescFile): ReflectionAnswer => {
    let list = withDependencies.get(file);
    if (list === undefined) {
      const seen = new Set<DescFile>();
      const visit = (f: DescFile) => {
        if (seen.has(f)) return;
        seen.add(f);
        f.dependencies.forEach(visit);
      };
      visit(file);
      // The requested file first: some clients take the first entry as the answer.
      list = [file, ...[...seen].filter((f) => f !== file)].map(encode);
      withDependencies.set(file, list);
    }
    return { case: "fileDescriptorResponse", value: { fileDescriptorProto: list } };
  };
  const notFound = (what: string): ReflectionAnswer => ({
    case: "errorResponse",
    value: { errorCode: Code.NotFound, errorMessage: `${what} not found` },
  });
  const trimDot = (name: string) => (name.startsWith(".") ? name.slice(1) : name);

  return {
    answer(query) {
      switch (query.case) {
        case "listServices":
          return { case: "listServicesResponse", value: { service: serviceNames.map((name) => ({ name })) } };
        case "fileByFilename": {
          const file = byName.get(query.value);
          return file ? fileAnswer(file) : notFound(`file ${JSON.stringify(query.value)}`);
        }
        case "fileContainingSymbol": {
          const file = symbols.get(trimDot(query.value));
          return file ? fileAnswer(file) : notFound(`symbol ${JSON.stringify(query.value)}`);
        }
        case "fileContainingExtension": {
          const { containingType, extensionNumber } = query.value;
          const file = extensions.get(trimDot(containingType))?.get(extensionNumber);
          return file ? fileAnswer(file) : notFound(`extension ${extensionNumber} of ${JSON.stringify(containingType)}`);
        }
        case "allExtensionNumbersOfType": {
          const type = trimDot(query.value);
          if (!messages.has(type)) return notFound(`message type ${JSON.stringify(query.value)}`);
          const numbers = [...(extensions.get(type)?.keys() ?? [])].sort((a, b) => a - b);
          return { case: "allExtensionNumbersResponse", value: { baseTypeName: type, extensionNumber: numbers } };
        }
        default:
          return {
            case: "errorResponse",
            value: { errorCode: Code.InvalidArgument, errorMessage: "reflection request names no query" },
          };
      }
    },
  };
}
