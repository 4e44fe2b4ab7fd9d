/**
 * Server reflection: the index on a descriptor with every kind of symbol, then the real server
 * with the real tools (grpcurl, buf curl) and raw v1 / v1alpha streams.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";
import { create, createFileRegistry, fromBinary, type DescFile } from "@bufbuild/protobuf";
import {
  FieldDescriptorProto_Label as Label,
  FieldDescriptorProto_Type as Type,
  file_google_protobuf_timestamp,
  FileDescriptorProtoSchema,
} from "@bufbuild/protobuf/wkt";
import { Code, createClient } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as reflectionV1 from "../gen/grpc/reflection/v1/reflection_pb.js";
import * as reflectionV1alpha from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { file_virtufin_websocketmanager } from "../gen/virtufin/websocketmanager_pb.js";
import { createReflectionIndex, type ReflectionAnswer } from "../src/rpc/reflection-service.ts";
import { FIXED_CONNECTION, startTestServer, type TestServer } from "./support/server-fixture.ts";

const run = promisify(execFile);

/** A proto2 file with nesting, a oneof, an enum and an extension: what ours lacks. */
function nestedFile(): DescFile {
  const proto = create(FileDescriptorProtoSchema, {
    name: "test/nested.proto",
    package: "testpkg",
    syntax: "proto2",
    dependency: ["google/protobuf/timestamp.proto"],
    messageType: [
      {
        name: "Outer",
        field: [
          { name: "when", number: 1, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".google.protobuf.Timestamp" },
          { name: "a", number: 2, label: Label.OPTIONAL, type: Type.STRING, oneofIndex: 0 },
          { name: "inner", number: 3, label: Label.OPTIONAL, type: Type.MESSAGE, typeName: ".testpkg.Outer.Inner" },
        ],
        oneofDecl: [{ name: "choice" }],
        nestedType: [{ name: "Inner", field: [{ name: "value", number: 1, label: Label.OPTIONAL, type: Type.INT32 }] }],
        enumType: [{ name: "Kind", value: [{ name: "KIND_A", number: 0 }] }],
        extensionRange: [{ start: 100, end: 200 }],
      },
    ],
    extension: [{ name: "note", number: 100, label: Label.OPTIONAL, type: Type.STRING, extendee: ".testpkg.Outer" }],
    service: [{ name: "Svc", method: [{ name: "Do", inputType: ".testpkg.Outer", outputType: ".testpkg.Outer" }] }],
  });
  const registry = createFileRegistry(proto, (name) =>
    name === file_google_protobuf_timestamp.proto.name ? file_google_protobuf_timestamp : undefined,
  );
  return registry.getFile("test/nested.proto")!;
}

function fileNames(answer: ReflectionAnswer): string[] {
  expect(answer.case).toBe("fileDescriptorResponse");
  if (answer.case !== "fileDescriptorResponse") return [];
  return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

function errorCode(answer: ReflectionAnswer): number | undefined {
  return answer.case === "errorResponse" ? answer.value.errorCode : undefined;
}

describe("reflection index", () => {
  const index = createReflectionIndex([nestedFile(), file_virtufin_websocketmanager]);

  it("finds every kind of symbol, leading dot or not, with the file first and its dependencies", () => {
    const symbols = [
      "testpkg.Svc",
      "testpkg.Svc.Do",
      "testpkg.Outer",
      ".testpkg.Outer",
      "testpkg.Outer.Inner",
      "testpkg.Outer.Inner.value",
      "testpkg.Outer.when",
      "testpkg.Outer.choice",
      "testpkg.Outer.Kind",
      "testpkg.Outer.KIND_A",
      "testpkg.Outer.Kind.KIND_A",
      "testpkg.note",
    ];
    for (const symbol of symbols) {
      expect(fileNames(index.answer({ case: "fileContainingSymbol", value: symbol })), symbol).toEqual([
        "test/nested.proto",
        "google/protobuf/timestamp.proto",
      ]);
    }
    for (const symbol of ["virtufin.ConnectRequest.TagsEntry", "virtufin.CORRELATION_MODE_UUID_PREFIX", "virtufin.WebSocketConnection.created_at"]) {
      expect(fileNames(index.answer({ case: "fileContainingSymbol", value: symbol }))[0], symbol).toBe(
        "virtufin/websocketmanager.proto",
      );
    }
    expect(errorCode(index.answer({ case: "fileContainingSymbol", value: "testpkg.Missing" }))).toBe(Code.NotFound);
  });

  it("serves files by name, dependencies included", () => {
    expect(fileNames(index.answer({ case: "fileByFilename", value: "virtufin/websocketmanager.proto" }))).toEqual([
      "virtufin/websocketmanager.proto",
      "google/protobuf/timestamp.proto",
    ]);
    expect(fileNames(index.answer({ case: "fileByFilename", value: "google/protobuf/timestamp.proto" }))).toEqual([
      "google/protobuf/timestamp.proto",
    ]);
    expect(errorCode(index.answer({ case: "fileByFilename", value: "nope.proto" }))).toBe(Code.NotFound);
  });

  it("answers extension queries as other servers do", () => {
    const ext = (containingType: string, extensionNumber: number) =>
      index.answer({ case: "fileContainingExtension", value: { containingType, extensionNumber } });
    expect(fileNames(ext("testpkg.Outer", 100))[0]).toBe("test/nested.proto");
    expect(errorCode(ext("testpkg.Outer", 101))).toBe(Code.NotFound);
    expect(errorCode(ext("testpkg.Nope", 100))).toBe(Code.NotFound);

    expect(index.answer({ case: "allExtensionNumbersOfType", value: "testpkg.Outer" })).toEqual({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "testpkg.Outer", extensionNumber: [100] },
    });
    expect(index.answer({ case: "allExtensionNumbersOfType", value: "virtufin.ListRequest" })).toEqual({
      case: "allExtensionNumbersResponse",
      value: { baseTypeName: "virtufin.ListRequest", extensionNumber: [] },
    });
    expect(errorCode(index.answer({ case: "allExtensionNumbersOfType", value: "testpkg.Svc" }))).toBe(Code.NotFound);
  });

  it("lists the services of the given files only, and rejects an empty query", () => {
    expect(index.answer({ case: "listServices", value: "*" })).toEqual({
      case: "listServicesResponse",
      value: { service: [{ name: "testpkg.Svc" }, { name: "virtufin.WebSocketManager" }] },
    });
    expect(errorCode(index.answer({ case: undefined }))).toBe(Code.InvalidArgument);
  });
});

describe("reflection on the server", () => {
  let t: TestServer;
  const grpcurl = new URL("../.cache/bin/grpcurl", import.meta.url).pathname;

  beforeAll(async () => {
    if (!existsSync(grpcurl)) throw new Error(`grpcurl is missing: run scripts/install-grpcurl.sh (looked for ${grpcurl})`);
    t = await startTestServer();
  });
  afterAll(() => t.close());

  /** `grpcurl -plaintext [flags] <server> <command...>`, by reflection only: no proto files. */
  const grpcurlRun = async (flags: string[], ...command: string[]) =>
    (await run(grpcurl, ["-plaintext", "-max-time", "10", ...flags, `127.0.0.1:${t.port}`, ...command])).stdout;

  it("grpcurl lists services", async () => {
    expect((await grpcurlRun([], "list")).trim().split("\n")).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "virtufin.WebSocketManager",
    ]);
  });

  it("grpcurl describes the service and a message that needs a transitive dependency", async () => {
    const service = await grpcurlRun([], "describe", "virtufin.WebSocketManager");
    expect(service).toContain("rpc Connect ( .virtufin.ConnectRequest ) returns ( .virtufin.ConnectResponse );");
    expect(service).toContain("rpc Subscribe ( .virtufin.SubscribeRequest ) returns ( stream .virtufin.SubscribeResponse );");
    const message = await grpcurlRun([], "describe", "virtufin.WebSocketConnection");
    expect(message).toContain(".google.protobuf.Timestamp created_at = 13;");
    expect(message).toContain("map<string, string> tags = 7;");
  });

  it("grpcurl calls a method known by reflection only", async () => {
    const body = JSON.parse(await grpcurlRun(["-d", "{}"], "virtufin.WebSocketManager/List")) as { connections: Array<{ id: string; createdAt: string }> };
    expect(body.connections[0]).toMatchObject({ id: FIXED_CONNECTION.id, createdAt: "2024-01-02T03:04:05Z" });
  });

  it.each(["grpc-v1", "grpc-v1alpha"])("buf curl lists, and invokes with JSON, using %s reflection", async (protocol) => {
    const bufCurl = async (...args: string[]) =>
      (
        await run("buf", ["curl", "--reflect", "--reflect-protocol", protocol, "--protocol", "grpc", "--http2-prior-knowledge", ...args], {
          env: { ...process.env, PATH: `${new URL("../node_modules/.bin", import.meta.url).pathname}:${process.env.PATH}` },
        })
      ).stdout;
    expect((await bufCurl("--list-services", t.baseUrl)).trim().split("\n")).toContain("virtufin.WebSocketManager");
    const methods = (await bufCurl("--list-methods", t.baseUrl)).trim().split("\n");
    expect(methods).toContain("virtufin.WebSocketManager/Connect");
    expect(methods).toContain("virtufin.WebSocketManager/Subscribe");
    const connected = JSON.parse(
      await bufCurl("-d", '{"url":"ws://upstream.test/a","auto_reconnect":true}', `${t.baseUrl}/virtufin.WebSocketManager/Connect`),
    ) as unknown;
    expect(connected).toEqual({ id: "id-for:ws://upstream.test/a", status: "connected" });
  });

  it("answers several v1alpha queries on one raw stream", async () => {
    const client = createClient(
      reflectionV1alpha.ServerReflection,
      createGrpcTransport({ baseUrl: t.baseUrl, idleConnectionTimeoutMs: 200 }),
    );
    const queries = [
      { host: "", messageRequest: { case: "listServices" as const, value: "" } },
      { host: "", messageRequest: { case: "fileContainingSymbol" as const, value: "virtufin.WebSocketConnection" } },
      { host: "", messageRequest: { case: "fileContainingSymbol" as const, value: "virtufin.Nope" } },
    ];
    async function* requests() {
      yield* queries;
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(requests())) answers.push(res);
    expect(answers).toHaveLength(3);
    expect(answers[0]?.originalRequest?.messageRequest.case).toBe("listServices");
    const list = answers[0]?.messageResponse;
    expect(list?.case === "listServicesResponse" && list.value.service.map((s) => s.name)).toContain(
      "grpc.reflection.v1alpha.ServerReflection",
    );
    const file = answers[1]?.messageResponse;
    expect(
      file?.case === "fileDescriptorResponse" &&
        file.value.fileDescriptorProto.map((b) => fromBinary(FileDescriptorProtoSchema, b).name),
    ).toEqual(["virtufin/websocketmanager.proto", "google/protobuf/timestamp.proto"]);
    const missing = answers[2]?.messageResponse;
    expect(missing?.case === "errorResponse" && missing.value.errorCode).toBe(Code.NotFound);
  });

  it("answers v1 over the Connect protocol too", async () => {
    const client = createClient(
      reflectionV1.ServerReflection,
      createConnectTransport({ baseUrl: t.baseUrl, httpVersion: "2", idleConnectionTimeoutMs: 200 }),
    );
    async function* requests() {
      yield { host: "", messageRequest: { case: "fileByFilename" as const, value: "grpc/health/v1/health.proto" } };
    }
    const answers = [];
    for await (const res of client.serverReflectionInfo(requests())) answers.push(res.messageResponse);
    expect(answers).toHaveLength(1);
    expect(answers[0]?.case).toBe("fileDescriptorResponse");
  });
});
