/**
 * A private `redis-server` that speaks TLS, for the TLS tests: a test CA, a
 * server certificate for 127.0.0.1 and a client certificate are made by
 * `openssl` in the server's own temporary directory at test time. The server
 * also keeps a plain port, used for the readiness PING and for looking at
 * the server's connections from the outside. The shared Redis on 6379 is
 * never touched.
 *
 * @module
 */

import { RedisServer } from "./_redis_server.ts";

/** Options of {@linkcode TlsRedisServer.start}. */
export interface TlsRedisServerOptions {
  /** Whether clients must present a certificate signed by the test CA (`--tls-auth-clients`). */
  requireClientCert?: boolean;
  /** Extra `redis-server` arguments, e.g. `["--requirepass", "x"]`. */
  args?: string[];
}

/** PEM texts a client needs: the CA to trust, and a certificate the server accepts. */
export interface TlsMaterial {
  /** The test CA that signed the server and client certificates. */
  readonly ca: string;
  /** A client certificate signed by the test CA. */
  readonly clientCert: string;
  /** The client certificate's private key. */
  readonly clientKey: string;
}

/** X.509 v3 extensions of each certificate, as `openssl -extfile` sections. */
const EXTENSIONS = `
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
[server]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1
[client]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
`;

/** P-256 keys: quick to make, and accepted by Redis and by the client's TLS stack. */
const NEW_KEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

async function openssl(dir: string, args: string[]): Promise<void> {
  let output: Deno.CommandOutput;
  try {
    output = await new Deno.Command("openssl", { args, cwd: dir, stdin: "null" }).output();
  } catch (error) {
    throw new Error(
      `the TLS tests need the openssl command to make their certificates: ${String(error)}`,
    );
  }
  if (!output.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(output.stderr).trim()}`,
    );
  }
}

/** `<name>.crt` and `<name>.key`, signed by the CA in `dir`, with the extensions of section `name`. */
async function signedCertificate(dir: string, name: string, subject: string): Promise<void> {
  await openssl(dir, [
    "req",
    "-new",
    ...NEW_KEY,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    subject,
  ]);
  await openssl(dir, [
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "1",
    "-extfile",
    "extensions.cnf",
    "-extensions",
    name,
    "-out",
    `${name}.crt`,
  ]);
}

/** Writes `ca.crt`, `server.crt`/`.key` and `client.crt`/`.key` into `dir`. */
export async function makeCertificates(dir: string): Promise<TlsMaterial> {
  await Deno.writeTextFile(`${dir}/extensions.cnf`, EXTENSIONS);
  await openssl(dir, [
    "req",
    "-x509",
    ...NEW_KEY,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=eventbus test CA",
    "-config",
    "extensions.cnf",
    "-extensions",
    "ca",
  ]);
  await signedCertificate(dir, "server", "/CN=127.0.0.1");
  await signedCertificate(dir, "client", "/CN=eventbus test client");
  return {
    ca: await Deno.readTextFile(`${dir}/ca.crt`),
    clientCert: await Deno.readTextFile(`${dir}/client.crt`),
    clientKey: await Deno.readTextFile(`${dir}/client.key`),
  };
}

/** A private `redis-server` with a TLS port and a plain one. */
export class TlsRedisServer {
  /** The server process (its `port` is the plain one). */
  readonly server: RedisServer;
  /** The port that speaks TLS. */
  readonly tlsPort: number;
  /** The CA and client certificate to connect with. */
  readonly tls: TlsMaterial;

  private constructor(server: RedisServer, tlsPort: number, tls: TlsMaterial) {
    this.server = server;
    this.tlsPort = tlsPort;
    this.tls = tls;
  }

  /** Makes the certificates, starts the server and resolves once it answers PING. */
  static async start(options: TlsRedisServerOptions = {}): Promise<TlsRedisServer> {
    let material: TlsMaterial | undefined;
    const server = await RedisServer.start({
      args: options.args,
      portOptions: ["--tls-port"],
      prepare: async (dir) => {
        material = await makeCertificates(dir);
        return [
          "--tls-cert-file",
          `${dir}/server.crt`,
          "--tls-key-file",
          `${dir}/server.key`,
          "--tls-ca-cert-file",
          `${dir}/ca.crt`,
          "--tls-auth-clients",
          options.requireClientCert ? "yes" : "no",
        ];
      },
    });
    return new TlsRedisServer(server, server.portOf("--tls-port"), material!);
  }

  /** `rediss://127.0.0.1:<tlsPort>`, optionally with a password. */
  tlsUrl(password?: string): string {
    return password === undefined
      ? `rediss://127.0.0.1:${this.tlsPort}`
      : `rediss://:${encodeURIComponent(password)}@127.0.0.1:${this.tlsPort}`;
  }

  /** `redis://127.0.0.1:<port>` (the plain port), optionally with a password. */
  plainUrl(password?: string): string {
    return this.server.url(password);
  }

  /** Stops the server and removes its directory (certificates included). */
  dispose(): Promise<void> {
    return this.server.dispose();
  }

  /** `await using server = await TlsRedisServer.start()`. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.dispose();
  }
}
