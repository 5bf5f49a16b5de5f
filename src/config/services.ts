/**
 * The services a node can run (the SERVICES variable). Each name maps to `services/<name>.service.ts`;
 * a test keeps the list and the files in step.
 */
export const SERVICE_NAMES = [
	"api",
	"proxy-pool",
	"maricopa",
	"store",
	"orchestrator",
	"scheduler",
	"browser-pool",
	"mls",
	"llm",
	"photos",
] as const;

export type ServiceName = (typeof SERVICE_NAMES)[number];
