export { SieveDelivery } from './sieve-delivery.js';
export { DEFAULT_LEDGER_RETENTION, SieveLedgerSweep } from './ledger-sweep.js';
export type { LedgerRetention, LedgerSweepResult } from './ledger-sweep.js';
export type { SieveDeliveryDeps, SievePlan, SieveTarget } from './sieve-delivery.js';
export { DEFAULT_SIEVE_SCRIPT_LIMITS, SieveScripts, isValidScriptName } from './script-store.js';
export type { ActiveScript, PutScriptResult, SieveScriptLimits } from './script-store.js';
