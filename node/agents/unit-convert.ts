/**
 * `unit-convert`: converts a value between units of length, mass, time, data size, temperature
 * and volume. Linear units are a factor of their dimension's base unit; temperatures are affine
 * and go through Celsius. US customary gallons and cups.
 */
import { AgentInputError } from './agent.ts'
import type { Agent, AgentDescription, AgentSpec } from './agent.ts'
import { JSON_SCHEMA_DRAFT, deterministicAgent, numberField, stringField } from './base.ts'

interface Unit {
  symbol: string
  dimension: string
  /** Value in the dimension's base unit of one of this unit (linear units). */
  factor: number
  /** Affine units: to and from the base unit (Celsius). */
  toBase?: (v: number) => number
  fromBase?: (v: number) => number
  aliases: string[]
}

const linear = (symbol: string, dimension: string, factor: number, ...aliases: string[]): Unit => ({
  symbol,
  dimension,
  factor,
  aliases,
})

const UNITS: Unit[] = [
  linear('mm', 'length', 0.001, 'millimeter', 'millimeters', 'millimetre', 'millimetres'),
  linear('cm', 'length', 0.01, 'centimeter', 'centimeters', 'centimetre', 'centimetres'),
  linear('m', 'length', 1, 'meter', 'meters', 'metre', 'metres'),
  linear('km', 'length', 1000, 'kilometer', 'kilometers', 'kilometre', 'kilometres', 'kms'),
  linear('in', 'length', 0.0254, 'inch', 'inches', '"'),
  linear('ft', 'length', 0.3048, 'foot', 'feet', "'"),
  linear('yd', 'length', 0.9144, 'yard', 'yards', 'yds'),
  linear('mi', 'length', 1609.344, 'mile', 'miles'),
  linear('mg', 'mass', 0.001, 'milligram', 'milligrams', 'milligramme', 'milligrammes'),
  linear('g', 'mass', 1, 'gram', 'grams', 'gramme', 'grammes'),
  linear('kg', 'mass', 1000, 'kilogram', 'kilograms', 'kilogramme', 'kilogrammes', 'kilo', 'kilos', 'kgs'),
  linear('lb', 'mass', 453.59237, 'lbs', 'pound', 'pounds'),
  linear('oz', 'mass', 28.349523125, 'ounce', 'ounces'),
  linear('t', 'mass', 1e6, 'tonne', 'tonnes', 'metric ton', 'metric tons'),
  linear('ms', 'time', 0.001, 'millisecond', 'milliseconds', 'msec'),
  linear('s', 'time', 1, 'sec', 'secs', 'second', 'seconds'),
  linear('min', 'time', 60, 'mins', 'minute', 'minutes'),
  linear('h', 'time', 3600, 'hr', 'hrs', 'hour', 'hours'),
  linear('day', 'time', 86400, 'd', 'days'),
  linear('week', 'time', 604800, 'wk', 'wks', 'weeks'),
  linear('B', 'data', 1, 'byte', 'bytes'),
  linear('KB', 'data', 1e3, 'kilobyte', 'kilobytes'),
  linear('MB', 'data', 1e6, 'megabyte', 'megabytes'),
  linear('GB', 'data', 1e9, 'gigabyte', 'gigabytes'),
  linear('TB', 'data', 1e12, 'terabyte', 'terabytes'),
  linear('KiB', 'data', 2 ** 10, 'kibibyte', 'kibibytes'),
  linear('MiB', 'data', 2 ** 20, 'mebibyte', 'mebibytes'),
  linear('GiB', 'data', 2 ** 30, 'gibibyte', 'gibibytes'),
  linear('TiB', 'data', 2 ** 40, 'tebibyte', 'tebibytes'),
  linear('ml', 'volume', 1, 'milliliter', 'milliliters', 'millilitre', 'millilitres', 'mls'),
  linear('l', 'volume', 1000, 'liter', 'liters', 'litre', 'litres', 'ltr'),
  linear('gal', 'volume', 3785.411784, 'gallon', 'gallons', 'gals', 'us gallon', 'us gallons'),
  linear('cup', 'volume', 236.5882365, 'cups', 'us cup', 'us cups'),
  {
    symbol: 'C', dimension: 'temperature', factor: 1, toBase: (v) => v, fromBase: (v) => v,
    aliases: ['°c', 'degc', 'deg c', 'celsius', 'centigrade', 'degrees celsius'],
  },
  {
    symbol: 'F', dimension: 'temperature', factor: 1,
    toBase: (v) => ((v - 32) * 5) / 9, fromBase: (v) => (v * 9) / 5 + 32,
    aliases: ['°f', 'degf', 'deg f', 'fahrenheit', 'degrees fahrenheit'],
  },
  {
    symbol: 'K', dimension: 'temperature', factor: 1, toBase: (v) => v - 273.15, fromBase: (v) => v + 273.15,
    aliases: ['kelvin', 'kelvins', 'degrees kelvin'],
  },
]

/** Lower-cased symbol or alias → unit. Every key is unique (checked at load time below). */
const LOOKUP = new Map<string, Unit>()
for (const unit of UNITS) {
  for (const key of [unit.symbol, ...unit.aliases].map((k) => k.toLowerCase())) {
    if (LOOKUP.has(key)) throw new Error(`unit-convert: alias "${key}" is defined twice`)
    LOOKUP.set(key, unit)
  }
}

const ABSOLUTE_ZERO_C = -273.15

function supportedUnits(): string {
  const byDimension = new Map<string, string[]>()
  for (const u of UNITS) byDimension.set(u.dimension, [...(byDimension.get(u.dimension) ?? []), u.symbol])
  return [...byDimension].map(([dim, symbols]) => `${dim}: ${symbols.join(' ')}`).join('; ')
}

export function findUnit(name: string, field: string): Unit {
  const key = name.trim().replace(/\s+/g, ' ').toLowerCase()
  const unit = LOOKUP.get(key)
  if (!unit) {
    throw new AgentInputError(`unknown unit ${JSON.stringify(name)} in "${field}"; supported units are ${supportedUnits()}`)
  }
  return unit
}

/**
 * Snaps binary floating-point noise to the short decimal it stands for (0.3048 / 0.0254 =
 * 12.000000000000002 becomes 12): only when a 12-significant-digit value is within a relative
 * 1e-14, so real digits (100 °F = 37.77777777777778 °C) are kept.
 */
function clean(v: number): number {
  const short = Number(v.toPrecision(12))
  return (Math.abs(short - v) <= Math.abs(v) * 1e-14 ? short : v) + 0
}

export function convert(value: number, fromName: string, toName: string): { value: number; unit: string } {
  const from = findUnit(fromName, 'from')
  const to = findUnit(toName, 'to')
  if (from.dimension !== to.dimension) {
    throw new AgentInputError(
      `cannot convert ${from.symbol} (${from.dimension}) to ${to.symbol} (${to.dimension}); ` +
        `both units must measure the same dimension`,
    )
  }
  if (from.toBase && to.fromBase) {
    const celsius = from.toBase(value)
    if (celsius < ABSOLUTE_ZERO_C - 1e-9) {
      throw new AgentInputError(`${value} ${from.symbol} is below absolute zero; send a physically possible temperature`)
    }
    const result = clean(to.fromBase(celsius))
    return { value: to.symbol === 'K' ? Math.max(0, result) : result, unit: to.symbol } // no -1e-14 K from rounding
  }
  const result = (value * from.factor) / to.factor
  if (!Number.isFinite(result)) {
    throw new AgentInputError(`${value} ${from.symbol} in ${to.symbol} is too large to represent; send a smaller value`)
  }
  return { value: clean(result), unit: to.symbol }
}

const defaults: AgentDescription = {
  name: 'unit-convert',
  description:
    'Unit converter that converts a quantity from one unit of measurement to another: length and distance ' +
    '(mm, cm, meters, km, inches, feet, yards, miles), weight and mass (mg, grams, kg, pounds, ounces, tonnes), ' +
    'time and duration (ms, seconds, minutes, hours, days, weeks), data and file sizes (bytes, KB, MB, GB, TB, ' +
    'KiB, MiB, GiB, TiB), temperature (Celsius, Fahrenheit, Kelvin) and volume (ml, liters, gallons, cups). ' +
    'Use it to ask how many feet are in a mile or what 100 °F is in °C.',
  skills: ['unit-conversion', 'convert-units', 'measurement', 'temperature', 'metric', 'imperial'],
  inputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      value: { type: 'number', description: 'The quantity to convert.' },
      from: { type: 'string', minLength: 1, description: 'Source unit symbol or name, e.g. "ft", "miles", "celsius".' },
      to: { type: 'string', minLength: 1, description: 'Target unit of the same dimension.' },
    },
    required: ['value', 'from', 'to'],
    additionalProperties: false,
    examples: [{ value: 100, from: 'F', to: 'C' }, { value: 1, from: 'GiB', to: 'B' }],
  },
  outputSchema: {
    $schema: JSON_SCHEMA_DRAFT,
    type: 'object',
    properties: {
      value: { type: 'number', description: 'Converted value; floating-point noise such as 12.000000000000002 is snapped to 12.' },
      unit: { type: 'string', description: 'Canonical symbol of the target unit.' },
    },
    required: ['value', 'unit'],
    additionalProperties: false,
  },
  costPerCall: 0.1,
  latencyMs: 1,
  capacity: 64,
  policy: ['deterministic', 'no-network', 'stateless'],
}

export function createUnitConvertAgent(spec: AgentSpec): Agent {
  const example = 'send e.g. { "value": 100, "from": "F", "to": "C" }'
  return deterministicAgent(defaults, spec, (input) =>
    convert(
      numberField(input, 'value', example),
      stringField(input, 'from', 64, example),
      stringField(input, 'to', 64, example),
    ),
  )
}
