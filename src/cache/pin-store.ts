import { dateRecord, KeptRecords } from './kept-records.js'

export interface Pin { pinned_at: string }

/**
 * The models an operator pinned: never evicted by the quota. Kept in `{STATE_DIR}/pins.json`, and
 * with REDIS_URL in Redis (`<prefix>pins`), so a pin made on one replica is honoured on every one.
 */
export class PinStore extends KeptRecords<Pin> {
  constructor (stateDir: string) {
    super(stateDir, 'pins', dateRecord('pinned_at'))
  }
}

export interface LastUse { at: string }

/**
 * When modeldepot last used a model: downloaded it (or found it complete), or made it the default.
 * Blob atimes alone do not say it: under `relatime` a read moves them at most once a day, and a
 * volume mounted `noatime` never. Kept in `{STATE_DIR}/last-use.json`, shared like the pins.
 */
export class LastUseStore extends KeptRecords<LastUse> {
  constructor (stateDir: string) {
    super(stateDir, 'last-use', dateRecord('at'))
  }
}
