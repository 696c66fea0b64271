/**
 * The kinds of work simulated agents do: per task type, the skill an agent of that type lists,
 * how agents describe themselves (several phrasings, one drawn per agent) and how requests ask
 * for it (paraphrases, one drawn per subtask). Routing in the simulator embeds these texts with
 * the same offline embedder a peer uses, so finding the right kind of agent is part of what is
 * measured, not assumed.
 */
export interface TaskType {
  name: string
  skill: string
  describe: readonly string[]
  ask: readonly string[]
}

export const CATALOGUE: readonly TaskType[] = [
  {
    name: 'arithmetic',
    skill: 'arithmetic',
    describe: ['evaluates arithmetic expressions: add, subtract, multiply, divide', 'a calculator for sums, products and percentages', 'computes the value of a math expression exactly'],
    ask: ['calculate the total of these numbers', 'what is 17 times 23 plus 4', 'work out the percentage and the sum', 'compute this math expression']
  },
  {
    name: 'unit-convert',
    skill: 'unit-conversion',
    describe: ['converts between units: metres, miles, kilograms, pounds, celsius, fahrenheit', 'unit conversion for length, mass and temperature', 'changes measurements from imperial to metric units'],
    ask: ['convert 5 miles to kilometres', 'how many pounds is 70 kilograms', 'change this temperature from celsius to fahrenheit', 'express these lengths in metres']
  },
  {
    name: 'sort',
    skill: 'sorting',
    describe: ['sorts lists of items in alphabetical or numeric order', 'orders a list ascending or descending', 'puts names and numbers in sorted order'],
    ask: ['put these names in alphabetical order', 'sort this list of numbers ascending', 'order the items from largest to smallest', 'arrange the words alphabetically']
  },
  {
    name: 'summarize',
    skill: 'summarization',
    describe: ['summarises long documents into a few key sentences', 'extractive summary of articles and reports', 'condenses text to its main points'],
    ask: ['summarize this article in three sentences', 'give me the key points of this report', 'condense the document to a short summary', 'what are the main ideas of this text']
  },
  {
    name: 'translate',
    skill: 'translation',
    describe: ['translates text between english, french, german and spanish', 'machine translation of sentences and documents', 'renders text in another language'],
    ask: ['translate this paragraph into french', 'what is this sentence in german', 'render the text in spanish', 'translate the message to english']
  },
  {
    name: 'sentiment',
    skill: 'sentiment-analysis',
    describe: ['classifies the sentiment of reviews as positive, negative or neutral', 'sentiment and emotion detection for customer feedback', 'rates how positive or negative a text is'],
    ask: ['is this review positive or negative', 'classify the sentiment of these comments', 'how does the customer feel about the product', 'detect the emotion in this feedback']
  },
  {
    name: 'code-review',
    skill: 'code-review',
    describe: ['reviews source code for bugs, style and security issues', 'static analysis and code review of pull requests', 'finds defects in typescript and python code'],
    ask: ['review this function for bugs', 'find security issues in this code', 'check the pull request for defects', 'does this python code have a bug']
  },
  {
    name: 'sql',
    skill: 'sql',
    describe: ['writes and explains SQL queries over relational tables', 'turns questions into SQL select statements', 'database query generation and optimisation'],
    ask: ['write a sql query that counts orders per customer', 'select the top ten products by revenue from the table', 'generate the database query for this question', 'optimise this select statement']
  },
  {
    name: 'caption',
    skill: 'image-captioning',
    describe: ['describes the content of images in one sentence', 'image captioning and alt text generation', 'says what is in a photo'],
    ask: ['write a caption for this photo', 'describe what is in the image', 'generate alt text for the picture', 'what does this photograph show']
  },
  {
    name: 'extract',
    skill: 'entity-extraction',
    describe: ['extracts names, dates, places and amounts from text', 'named entity extraction into structured json', 'pulls fields out of invoices and emails'],
    ask: ['extract the dates and amounts from this invoice', 'find the people and places mentioned in the email', 'pull the fields out of this document as json', 'list the named entities in the text']
  }
]

/**
 * What makes one agent's advertisement differ from another's of the same type: real agents
 * describe themselves in their own words, so no two screen identically.
 */
export const QUALIFIERS: readonly string[] = [
  'fast and cheap', 'high accuracy', 'handles large batches', 'json in and out', 'runs on a gpu',
  'good for short inputs', 'audited and deterministic', 'multilingual', 'low latency', 'for production workloads',
  'open source model', 'enterprise support', 'streaming friendly', 'tested on benchmarks', 'small footprint'
]
