// The canonical tie-break bytes (tests/test_web_canonical.py): states in, hex out.
//   stdin: {"states": [state, ...]}   stdout: {"canonical": ["<hex>", ...]}
import { canonicalState } from "../../src/protocol/canonical";
import type { ArcherState } from "../../src/protocol/types";
import { readJson, writeJson } from "./stdio";

const input = (await readJson()) as { states: ArcherState[] };
writeJson({ canonical: input.states.map((s) => Buffer.from(canonicalState(s)).toString("hex")) });
