/**
 * REPL command of the photos service: `photos <key>` lists a property's photos in the listing's
 * order (photos.list): size, dimensions, duplicate kind, hashes, first and last seen, failures.
 */
import { callPhotos } from "../contracts/photos.ts";
import type { ReplCommand } from "../types/repl.ts";

export function photosReplCommands(): ReplCommand[] {
	return [
		{
			command: "photos <key>",
			description:
				"A property's photos in the listing's order: size, duplicate kind, hashes, first/last seen",
			async action(broker, args) {
				const key = String(args.key);
				const r = await callPhotos(broker, "photos.list", { key });
				if (r.photos.length === 0) {
					console.log(`${r.key}: no photos stored (collect --sources photos, or collect ... --photos)`);
					return;
				}
				const ok = r.photos.filter((p) => p.status === "ok");
				const dups = ok.filter((p) => p.duplicate).length;
				console.log(
					`${r.key}: ${r.photos.length} photos, ${ok.length} stored (${dups} duplicates of another photo), ${r.photos.length - ok.length} failed`,
				);
				console.table(
					r.photos.map((p) => ({
						"#": p.position + 1,
						photo: p.photoId,
						status:
							p.status === "ok"
								? p.duplicate
									? `${p.duplicate} dup`
									: "stored"
								: `failed: ${p.failure?.reason}`,
						size: p.width ? `${p.width}x${p.height}` : "-",
						kb: p.bytes ? Math.round(p.bytes / 1024) : "-",
						sha256: p.sha256 ? p.sha256.slice(0, 12) : "-",
						phash: p.phash ?? "-",
						firstSeen: p.firstSeen.slice(0, 19),
						lastSeen: p.lastSeen.slice(0, 19),
					})),
				);
			},
		},
	];
}
