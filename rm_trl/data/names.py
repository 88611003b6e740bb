"""The column names rm-trl adds to a dataset as it prepares it, defined once (every module imports them from here).

A data column of the user's with one of these names would be overwritten, so formats refuse them as target
columns (`RESERVED_COLUMNS`).
"""

ROW = "row"  # the source row number, carried through every step so messages and outputs can name it
PROBLEMS = "_problems"  # a row's validation problems (JSON), empty when it is valid
PROMPT_IDS = "prompt_ids"
RESPONSE_IDS = "response_ids"
# Per response, the token offsets (within its `response_ids`) where a reward is read: `rm_trl.reward_reading`.
REWARD_POSITIONS = "reward_positions"
LENGTH = "length"  # tokens of the row (prompt once + every response): what length-grouped batching sorts by
STATUS = "_status"  # ok / truncated / over-length, before the length policy is applied

POSITION_COUNTS = "position_counts"  # per response of a batch, how many reward positions it has
RESPONSE_LENGTHS = "response_lengths"  # per response of a batch, its tokens (prompt excluded)

BATCH_KEYS = ("input_ids", "attention_mask", "group_sizes", "reward_index", POSITION_COUNTS)  # a collated batch's
RESERVED_COLUMNS = frozenset({ROW, PROMPT_IDS, RESPONSE_IDS, REWARD_POSITIONS, LENGTH, *BATCH_KEYS})
