#!/usr/bin/env node
// Validates a FHIR R4 Bundle exported by MedGemma Desk with validators we did
// not write, pinned in package.json:
//
//  1. FHIR.js (npm "fhir"): every resource of the Bundle against the R4
//     StructureDefinitions and value sets it ships: element names,
//     cardinality, data types, and the codes of required bindings.
//  2. HL7's FHIRPath engine (npm "fhirpath", R4 model), evaluating the rules
//     a receiving system needs beyond the base specification, written as
//     FHIRPath invariants the way an implementation guide's profile states
//     them (RULES below), and R4's own regular expressions for the instants
//     and dates we write (the base validator does not check them).
//
// Usage: node validate.js BUNDLE.json   Prints each problem on a line of its
// own; exits 1 when there is any, 0 when the Bundle is valid.
"use strict";

const fs = require("fs");
const { Fhir } = require("fhir");
const fhirpath = require("fhirpath");
const r4 = require("fhirpath/fhir-context/r4");

// R4 primitive types' regular expressions (FHIR R4 datatypes, §2.24.0.1),
// with "\." and "\+" written as [.] and [+]: no escapes inside FHIRPath strings.
const INSTANT =
  "^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)-(0[1-9]|1[0-2])-(0[1-9]|[1-2][0-9]|3[0-1])T([01][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)([.][0-9]+)?(Z|([+]|-)((0[0-9]|1[0-3]):[0-5][0-9]|14:00))$";
const DATE = "^([0-9]([0-9]([0-9][1-9]|[1-9]0)|[1-9]00)|[1-9]000)(-(0[1-9]|1[0-2])(-(0[1-9]|[1-2][0-9]|3[0-1]))?)?$";

// [key, human description, FHIRPath expression that must be true on the Bundle]
const RULES = [
  ["bdl-collection", "the Bundle is a collection", "Bundle.type = 'collection'"],
  ["bdl-fullurl", "every entry has a fullUrl", "Bundle.entry.all(fullUrl.exists())"],
  ["dr-one", "the Bundle holds exactly one DiagnosticReport", "Bundle.entry.resource.ofType(DiagnosticReport).count() = 1"],
  ["dr-subject", "the DiagnosticReport has a subject", "Bundle.entry.resource.ofType(DiagnosticReport).all(subject.reference.exists())"],
  [
    "dr-subject-patient",
    "the DiagnosticReport's subject is a Patient in the Bundle",
    "Bundle.entry.resource.ofType(DiagnosticReport).subject.reference.all($this in %context.entry.where(resource is Patient).fullUrl)",
  ],
  [
    "dr-code-loinc",
    "the DiagnosticReport's code has a LOINC coding",
    "Bundle.entry.resource.ofType(DiagnosticReport).all(code.coding.where(system = 'http://loinc.org' and code.exists()).exists())",
  ],
  [
    "dr-category-rad",
    "the DiagnosticReport is in the radiology category (HL7 v2 table 0074)",
    "Bundle.entry.resource.ofType(DiagnosticReport).all(category.coding.where(system = 'http://terminology.hl7.org/CodeSystem/v2-0074' and code = 'RAD').exists())",
  ],
  [
    "dr-issued",
    "a signed DiagnosticReport says when it was issued",
    "Bundle.entry.resource.ofType(DiagnosticReport).all((status = 'final' or status = 'amended' or status = 'preliminary') implies issued.exists())",
  ],
  [
    "dr-presented",
    "the DiagnosticReport carries its text as a presented form",
    "Bundle.entry.resource.ofType(DiagnosticReport).all(presentedForm.where(contentType.exists() and data.exists()).exists())",
  ],
  ["prov-exists", "the Bundle has Provenance for the report", "Bundle.entry.resource.ofType(Provenance).exists()"],
  [
    "prov-target",
    "every Provenance targets a resource in the Bundle",
    "Bundle.entry.resource.ofType(Provenance).target.reference.all($this in %context.entry.fullUrl)",
  ],
  [
    "prov-agent",
    "every Provenance agent that is a reference points into the Bundle",
    "Bundle.entry.resource.ofType(Provenance).agent.who.reference.all($this in %context.entry.fullUrl)",
  ],
  [
    "prov-agent-type",
    "every Provenance agent has a participant type",
    "Bundle.entry.resource.ofType(Provenance).agent.all(type.coding.where(system = 'http://terminology.hl7.org/CodeSystem/provenance-participant-type').exists())",
  ],
  [
    "txt-div",
    "every narrative is an XHTML div (R4 txt-1)",
    "Bundle.entry.resource.text.all(`div`.startsWith('<div xmlns=\"http://www.w3.org/1999/xhtml\">'))", // `div` is also an operator
  ],
  ["fmt-timestamp", "Bundle.timestamp is an R4 instant", `Bundle.timestamp.all(toString().matches('${INSTANT}'))`],
  ["fmt-issued", "DiagnosticReport.issued is an R4 instant", `Bundle.entry.resource.ofType(DiagnosticReport).issued.all(toString().matches('${INSTANT}'))`],
  ["fmt-recorded", "Provenance.recorded is an R4 instant", `Bundle.entry.resource.ofType(Provenance).recorded.all(toString().matches('${INSTANT}'))`],
  ["fmt-birthdate", "Patient.birthDate is an R4 date", `Bundle.entry.resource.ofType(Patient).birthDate.all(toString().matches('${DATE}'))`],
];

function validate(bundle) {
  const problems = [];
  const base = new Fhir().validate(bundle, {});
  for (const m of base.messages) {
    // "Unexpected property" is a warning to FHIR.js; for an export it is an error (a misspelt element is lost data).
    const bad = m.severity === "error" || m.severity === "fatal" || (m.severity === "warning" && /Unexpected property/.test(m.message));
    if (bad) problems.push(`FHIR.js (R4 base): ${m.resourceId} ${m.location}: ${m.message}`);
  }
  for (const [key, words, expression] of RULES) {
    let result;
    try {
      result = fhirpath.evaluate(bundle, expression, null, r4);
    } catch (e) {
      problems.push(`${key}: the FHIRPath rule could not be evaluated (${e.message})`);
      continue;
    }
    if (!(result.length === 1 && result[0] === true)) problems.push(`${key}: ${words} (FHIRPath: ${expression})`);
  }
  return problems;
}

module.exports = { validate, RULES };

if (require.main === module) {
  const file = process.argv[2];
  if (!file) {
    console.error("usage: node validate.js BUNDLE.json");
    process.exit(2);
  }
  let bundle;
  try {
    bundle = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch (e) {
    console.log(`not JSON: ${e.message}`);
    process.exit(1);
  }
  const problems = validate(bundle);
  for (const p of problems) console.log(p);
  if (problems.length === 0) console.log(`valid: ${bundle.entry ? bundle.entry.length : 0} entries, FHIR.js R4 and ${RULES.length} rules`);
  process.exit(problems.length === 0 ? 0 : 1);
}
