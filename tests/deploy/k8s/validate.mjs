// Validates every object in the given YAML files against the Kubernetes API
// schemas (kubernetes-models, offline) and prints, one per line, each
// container's and exec probe's command line ("PROGRAM ARG...") for the caller
// to check against the programs' real flags. Exit 1 on any invalid object.
// usage: node validate.mjs FILE.yaml...
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

const modules = {
  "v1": () => import("kubernetes-models/v1"),
  "apps/v1": () => import("kubernetes-models/apps/v1"),
  "autoscaling/v2": () => import("kubernetes-models/autoscaling/v2"),
  "kustomize.config.k8s.io/v1beta1": null,  // kustomize's own file: not an API object
};

let failed = false;
const commands = [];
for (const file of process.argv.slice(2)) {
  for (const document of parseAllDocuments(readFileSync(file, "utf8"))) {
    if (document.errors.length > 0) {
      console.error(`${file}: YAML error: ${document.errors[0].message}`);
      failed = true;
      continue;
    }
    const object = document.toJS();
    if (object === null) continue;
    const where = `${file}: ${object.kind}/${object.metadata?.name ?? "?"}`;
    if (!(object.apiVersion in modules)) {
      console.error(`${where}: unknown apiVersion ${object.apiVersion}`);
      failed = true;
      continue;
    }
    if (modules[object.apiVersion] === null) continue;
    const model = (await modules[object.apiVersion]())[object.kind];
    if (model === undefined) {
      console.error(`${where}: no kind ${object.kind} in ${object.apiVersion}`);
      failed = true;
      continue;
    }
    try {
      new model(object).validate();
      console.error(`${where}: valid`);
    } catch (error) {
      console.error(`${where}: INVALID: ${error.message}`);
      failed = true;
    }
    for (const container of object.spec?.template?.spec?.containers ?? []) {
      commands.push([...(container.command ?? []), ...(container.args ?? [])]);
      for (const probe of [container.readinessProbe, container.livenessProbe, container.startupProbe]) {
        if (probe?.exec?.command) commands.push(probe.exec.command);
      }
    }
  }
}
for (const command of commands) console.log(command.join("\t"));
process.exit(failed ? 1 : 0);
