/**
 * Upstream proxy URLs: parsing, stable ids that carry no secret, and display forms without the
 * password. Every password parsed here is registered with the redactor, so it is masked even if it
 * turns up inside an error message from a library.
 */
import { createHash } from "node:crypto";
import { InvalidInputError } from "../core/errors.ts";
import { registerSecret } from "../utils/redact.ts";

export type ProxyProtocol = "http" | "https";

export interface ProxyEndpoint {
	/** Stable id from protocol, host, port and username (never the password): `px-<12 hex>`. */
	id: string;
	protocol: ProxyProtocol;
	host: string;
	port: number;
	username: string;
	password: string;
	/** Full URL with credentials: for connecting only, never for output. */
	url: string;
	/** `host:port` (plus `user@` when present): safe to log and return. */
	label: string;
	/** Where the proxy came from (file, env, provider, api). */
	source: string;
	countryCode?: string;
}

/** What leaves the service: everything but the password and the credentialed URL. */
export interface PublicProxy {
	id: string;
	protocol: ProxyProtocol;
	host: string;
	port: number;
	username: string;
	label: string;
	source: string;
	countryCode?: string;
}

/** A proxy URL that cannot be used (INVALID_PROXY_URL, 422). */
export class ProxyUrlError extends InvalidInputError {
	constructor(message: string) {
		super(message, { type: "INVALID_PROXY_URL" });
	}
}

const DEFAULT_PORTS: Record<ProxyProtocol, number> = { http: 80, https: 443 };

/**
 * Accepts `http://user:pass@host:port`, `https://…`, a bare `host:port`, `user:pass@host:port`, and
 * the provider export shape `host:port:user:pass`.
 */
export function parseProxyUrl(input: string, source = "api"): ProxyEndpoint {
	const text = input.trim();
	if (text === "") throw new ProxyUrlError("empty proxy URL");
	let candidate = text;
	const colonForm = /^([^:/@\s]+):(\d{1,5}):([^:\s]+):(\S+)$/.exec(text);
	if (colonForm) {
		const [, host, port, user, pass] = colonForm;
		candidate = `http://${encodeURIComponent(user!)}:${encodeURIComponent(pass!)}@${host}:${port}`;
	} else if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(text)) {
		candidate = `http://${text}`;
	}
	let parsed: URL;
	try {
		parsed = new URL(candidate);
	} catch {
		throw new ProxyUrlError(`not a proxy URL: '${redactInput(text)}'`);
	}
	const protocol = parsed.protocol.replace(/:$/, "");
	if (protocol !== "http" && protocol !== "https") {
		throw new ProxyUrlError(`unsupported proxy scheme '${protocol}:' (http: or https:)`);
	}
	if (!parsed.hostname) throw new ProxyUrlError("proxy URL has no host");
	if (parsed.pathname !== "/" && parsed.pathname !== "")
		throw new ProxyUrlError("proxy URL must not have a path");
	const port = parsed.port ? Number(parsed.port) : DEFAULT_PORTS[protocol];
	if (!(port >= 1 && port <= 65535)) throw new ProxyUrlError(`bad proxy port in '${redactInput(text)}'`);
	const username = decodeURIComponent(parsed.username);
	const password = decodeURIComponent(parsed.password);
	if (username.includes(":")) throw new ProxyUrlError("proxy username must not contain ':'");
	registerSecret(password);
	return makeEndpoint({ protocol, host: parsed.hostname, port, username, password, source });
}

export function makeEndpoint(p: {
	protocol: ProxyProtocol;
	host: string;
	port: number;
	username: string;
	password: string;
	source: string;
	countryCode?: string;
}): ProxyEndpoint {
	registerSecret(p.password);
	const auth = p.username
		? `${encodeURIComponent(p.username)}${p.password ? `:${encodeURIComponent(p.password)}` : ""}@`
		: "";
	const hostPart = p.host.includes(":") && !p.host.startsWith("[") ? `[${p.host}]` : p.host;
	const url = `${p.protocol}://${auth}${hostPart}:${p.port}`;
	const id = `px-${createHash("sha256").update(`${p.protocol}|${p.host}|${p.port}|${p.username}`).digest("hex").slice(0, 12)}`;
	const label = `${p.username ? `${p.username}@` : ""}${hostPart}:${p.port}`;
	const endpoint: ProxyEndpoint = { id, ...p, url, label };
	if (p.countryCode === undefined) delete endpoint.countryCode;
	return endpoint;
}

export function toPublic(p: ProxyEndpoint): PublicProxy {
	const out: PublicProxy = {
		id: p.id,
		protocol: p.protocol,
		host: p.host,
		port: p.port,
		username: p.username,
		label: p.label,
		source: p.source,
	};
	if (p.countryCode) out.countryCode = p.countryCode;
	return out;
}

/** `Proxy-Authorization` header value for an endpoint, or null without credentials. */
export function proxyAuthorization(p: ProxyEndpoint): string | null {
	if (!p.username && !p.password) return null;
	return `Basic ${Buffer.from(`${p.username}:${p.password}`).toString("base64")}`;
}

/** An unparseable input may still hold a password: show only what precedes any '@' or 2nd ':'. */
function redactInput(text: string): string {
	const at = text.lastIndexOf("@");
	if (at >= 0) return `…@${text.slice(at + 1)}`;
	const parts = text.split(":");
	return parts.length > 2 ? `${parts.slice(0, 2).join(":")}:…` : text;
}
