/**
 * Secret redaction for everything that leaves a process: logs, API answers, action results.
 * Keys that name secrets are masked wherever they appear; credentials inside URLs are masked;
 * and any value registered as a secret (tokens, API keys read from the environment) is masked
 * even when it shows up inside a free-text message.
 */

export const REDACTED = "[redacted]";

// A bare "key" is not here: properties, tasks and cache entries have keys that are data. Keys of
// services (CAPTCHA_KEY, ...) are masked by value, registered from the config's secret settings.
const SECRET_KEY =
	/^(pass(word)?|.*_?password|.*token|.*secret|.*(api|client|access|private|captcha|provider)_?key|authorization|proxy-authorization|cookie|set-cookie)$/i;

// scheme://user:password@host -> scheme://user:[redacted]@host
const URL_CREDENTIALS = /([a-z][a-z0-9+.-]*:\/\/[^:/@\s]*:)([^@\s/]+)(@)/gi;

const registered = new Set<string>();
const registeredKeys = new Set<string>();

/** Remember a secret value so it is masked wherever it appears. Short values are ignored. */
export function registerSecret(value: string | null | undefined): void {
	if (value && value.length >= 6) registered.add(value);
}

/**
 * Remember a key whose value is always a secret, whatever its length or shape: the settings
 * declared secret (API_TOKENS, PROXIES, ...) when an environment is shown (the REPL's `env`).
 */
export function registerSecretKey(key: string): void {
	registeredKeys.add(key);
}

export function isSecretKey(key: string): boolean {
	return SECRET_KEY.test(key) || registeredKeys.has(key);
}

export function redactString(text: string): string {
	let out = text.replace(URL_CREDENTIALS, `$1${REDACTED}$3`);
	for (const secret of registered) {
		if (out.includes(secret)) out = out.split(secret).join(REDACTED);
	}
	return out;
}

/**
 * Deep copy of `value` with secrets masked. Cycles are cut, not followed; a value shared by two
 * branches (not a cycle) is copied in both.
 */
export function redact<T>(value: T, seen = new WeakSet<object>()): T {
	if (typeof value === "string") return redactString(value) as T;
	if (value === null || typeof value !== "object") return value;
	if (value instanceof Error) {
		const copy = new Error(redactString(value.message)) as Error & Record<string, unknown>;
		copy.name = value.name;
		if (value.stack) copy.stack = redactString(value.stack);
		for (const [k, v] of Object.entries(value)) copy[k] = isSecretKey(k) ? REDACTED : redact(v, seen);
		return copy as T;
	}
	if (value instanceof Date || Buffer.isBuffer(value)) return value;
	// `seen` holds the objects on the path from the root: a cycle, not a shared value.
	if (seen.has(value)) return "[circular]" as T;
	seen.add(value);
	try {
		if (Array.isArray(value)) return value.map((v) => redact(v, seen)) as T;
		const out: Record<string, unknown> = {};
		for (const [k, v] of Object.entries(value)) {
			out[k] = isSecretKey(k) && v != null && v !== "" ? REDACTED : redact(v, seen);
		}
		return out as T;
	} finally {
		seen.delete(value);
	}
}
