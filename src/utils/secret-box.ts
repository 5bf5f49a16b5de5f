/**
 * Sealing secrets that must be stored where others can read (the shared state in Redis): AES-256-GCM
 * from node:crypto, no extra dependency. GCM authenticates as well as encrypts, so a value edited in
 * Redis, sealed under another key, or moved to another entry (the entry's name is bound in as
 * associated data) fails to open instead of yielding a wrong secret. Each seal draws a fresh 96-bit
 * IV. The key is derived from a configured string with HKDF-SHA256; the setting asks for 32+
 * characters of random text (e.g. `openssl rand -base64 32`), so no slow password hash is needed.
 *
 * Format: `sb1:` + base64url(iv[12] | tag[16] | ciphertext).
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from "node:crypto";

const PREFIX = "sb1:";
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class SecretBoxError extends Error {
	constructor(message: string) {
		super(message);
		this.name = "SecretBoxError";
	}
}

export class SecretBox {
	readonly #key: Buffer;

	private constructor(key: Buffer) {
		this.#key = key;
	}

	/** A box whose key is derived from a configured secret (the same secret opens it on every node). */
	static fromSecret(secret: string): SecretBox {
		const key = Buffer.from(hkdfSync("sha256", secret, "saguaro-secret-box", "sb1 aes-256-gcm", 32));
		return new SecretBox(key);
	}

	/** A box with a random key that lives and dies with this process (embedded use, no shared store). */
	static ephemeral(): SecretBox {
		return new SecretBox(randomBytes(32));
	}

	static isSealed(value: unknown): value is string {
		return typeof value === "string" && value.startsWith(PREFIX);
	}

	/** Seal `plain`, bound to `context` (e.g. the id of the entry it is stored under). */
	seal(plain: string, context = ""): string {
		const iv = randomBytes(IV_BYTES);
		const cipher = createCipheriv("aes-256-gcm", this.#key, iv);
		cipher.setAAD(Buffer.from(context, "utf8"));
		const body = Buffer.concat([cipher.update(plain, "utf8"), cipher.final()]);
		return PREFIX + Buffer.concat([iv, cipher.getAuthTag(), body]).toString("base64url");
	}

	/** Open a sealed value; throws SecretBoxError when the key or context is wrong or it was altered. */
	open(sealed: string, context = ""): string {
		if (!SecretBox.isSealed(sealed)) throw new SecretBoxError("not a sealed value");
		const raw = Buffer.from(sealed.slice(PREFIX.length), "base64url");
		if (raw.length < IV_BYTES + TAG_BYTES) throw new SecretBoxError("sealed value is truncated");
		try {
			const decipher = createDecipheriv("aes-256-gcm", this.#key, raw.subarray(0, IV_BYTES));
			decipher.setAAD(Buffer.from(context, "utf8"));
			decipher.setAuthTag(raw.subarray(IV_BYTES, IV_BYTES + TAG_BYTES));
			return Buffer.concat([decipher.update(raw.subarray(IV_BYTES + TAG_BYTES)), decipher.final()]).toString(
				"utf8",
			);
		} catch {
			throw new SecretBoxError("sealed value does not open with this key (another key, or altered)");
		}
	}
}
