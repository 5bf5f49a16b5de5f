/**
 * Start-up check of what this node's services need from the machine and the configuration: the
 * Chromium executable for browser-pool, proxies (and the gateway) for mls, the Assessor token for
 * maricopa. Each finding says what is missing, what fails because of it, what still works, and how
 * to fix it. Nothing here stops the node: the parts that can work, work.
 */
import { accessSync, constants, statSync } from "node:fs";
import type { Config } from "../config/index.ts";

export interface PreflightFinding {
	/** The service that lacks something. */
	service: string;
	/** What is missing, and how to provide it. */
	missing: string;
	/** What fails because of it, and what still works. */
	effect: string;
}

/** Why `path` cannot be run as Chromium, or null when it can. */
export function chromiumProblem(path: string): string | null {
	try {
		if (!statSync(path).isFile()) return `CHROMIUM_PATH=${path} is not a file`;
		accessSync(path, constants.X_OK);
		return null;
	} catch (err) {
		const code = (err as { code?: string }).code;
		return code === "ENOENT"
			? `no Chromium at ${path} (CHROMIUM_PATH)`
			: `Chromium at ${path} (CHROMIUM_PATH) cannot be run: ${code ?? (err as Error).message}`;
	}
}

/** How to get Chromium, for messages. */
export const CHROMIUM_HINT =
	"install it with `npm run setup` or `sudo apt-get install -y chromium` (Debian; Ubuntu: the chromium snap, then CHROMIUM_PATH=/snap/bin/chromium), or point CHROMIUM_PATH at a Chromium or Chrome executable";

export function preflight(config: Config): PreflightFinding[] {
	const services = new Set(config.core.services);
	const out: PreflightFinding[] = [];
	if (services.has("browser-pool")) {
		const problem = chromiumProblem(config.browser.chromiumPath);
		if (problem) {
			out.push({
				service: "browser-pool",
				missing: `${problem}: ${CHROMIUM_HINT}`,
				effect: services.has("mls")
					? "pages that need script cannot be rendered: MLS listings whose facts are filled by script fail (each named, with this reason); plain-HTML listings, the Assessor and everything else work"
					: "browser-pool.render fails; everything else works",
			});
		}
	}
	if (services.has("mls") && config.mls.useProxies && services.has("proxy-pool")) {
		const p = config.proxy;
		if (p.proxies.length === 0 && !p.file && !p.listUrl) {
			out.push({
				service: "mls",
				missing:
					"no proxy configured (PROXIES, PROXY_FILE or PROXY_LIST_URL), and MLS_USE_PROXIES is on; add proxies at run time with proxy-pool.add, or set MLS_USE_PROXIES=false to reach the site directly",
				effect:
					"MLS collection fails at once with this reason (no retries); the Assessor and everything else work",
			});
		} else if (p.gatewayPort === "off") {
			out.push({
				service: "mls",
				missing:
					"PROXY_GATEWAY_PORT=off: MLS and browser traffic go through the proxy-pool gateway; set it to auto (the default) or a port",
				effect:
					"MLS collection fails at once with this reason (no retries); the Assessor and everything else work",
			});
		}
	}
	if (services.has("maricopa") && !config.maricopa.token) {
		out.push({
			service: "maricopa",
			missing: "MARICOPA_TOKEN is not set (the Assessor REST API needs one)",
			effect:
				"parcel details from the REST API fail with this reason; bulk parcel facts from the public GIS layer are still collected",
		});
	}
	return out;
}

/** One line per finding, for logs and the demo. */
export function formatFindings(findings: PreflightFinding[]): string[] {
	return findings.map((f) => `${f.service}: ${f.missing}. Effect: ${f.effect}.`);
}
