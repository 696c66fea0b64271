// Property tests are reproducible: one fixed seed unless FC_SEED asks for another exploration.
import fc from 'fast-check'

fc.configureGlobal({ seed: Number(process.env.FC_SEED ?? 20261125) })
