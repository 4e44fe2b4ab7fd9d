/** A throwaway self-signed certificate for 127.0.0.1, made with openssl at run time. */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface SelfSigned {
  dir: string;
  certFile: string;
  keyFile: string;
  certPem: string;
  keyPem: string;
  remove(): void;
}

/** ECDSA P-256, as most public wss:// endpoints serve today. */
export function makeSelfSignedCert(): SelfSigned {
  const dir = mkdtempSync(join(tmpdir(), "wsm-bench-tls-"));
  const certFile = join(dir, "cert.pem");
  const keyFile = join(dir, "key.pem");
  execFileSync(
    "openssl",
    [
      "req", "-x509", "-nodes", "-days", "1",
      "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
      "-keyout", keyFile, "-out", certFile,
      "-subj", "/CN=127.0.0.1",
      "-addext", "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  return {
    dir,
    certFile,
    keyFile,
    certPem: readFileSync(certFile, "utf8"),
    keyPem: readFileSync(keyFile, "utf8"),
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
