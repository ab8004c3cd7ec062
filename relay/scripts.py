"""The Lua scripts that write a shoot's keys, each run atomically by Redis.

Every script names all the keys it touches in ``KEYS`` and all of them share the shoot's
hash tag, so each runs on one Redis Cluster node (an undeclared key on the same node would
not be refused there, so a test on one node could not catch it: declare every key).
Refusals are answered as values (``{0, why}``), never with ``redis.error_reply``: an error
reply is a RedisError, which the store treats as Redis being away and retries for ever.
"""

from __future__ import annotations

from typing import Final

__all__ = [
    "ACQUIRE",
    "ANSWER",
    "APPEND",
    "CLAIM",
    "COMPACT",
    "FORWARD",
    "NAME_CLAIM",
    "NAME_RELEASE",
    "NOTICE",
    "RELEASE",
    "RENEW",
]

# The claim check, shared by every script that writes a shoot's data: KEYS[1] is the
# code's claim and ARGV[1] the writer's shoot id. Answers nil when the shoot still holds
# its code, else why not.
CLAIMED: Final = """
local function unclaimed()
  local meta = redis.call('GET', KEYS[1])
  if not meta then return 'ended' end
  local ok, shoot = pcall(cjson.decode, meta)
  if not ok or type(shoot) ~= 'table' or shoot['shoot_id'] ~= ARGV[1] then
    return 'replaced'
  end
  return nil
end
"""

# The fence of every write of a shoot's document: the claim check, then ownership.
# KEYS[2] is the lease, KEYS[3] the epoch; ARGV[2] the writer's token, ARGV[3] its epoch.
# A lease held by someone else, or an epoch that moved on, means the writer was deposed.
FENCE: Final = (
    CLAIMED
    + """
local function fenced()
  local refused = unclaimed()
  if refused then return refused end
  local holder = redis.call('GET', KEYS[2])
  if holder ~= ARGV[2] and (holder or redis.call('GET', KEYS[3]) ~= ARGV[3]) then
    return 'deposed'
  end
  return nil
end
"""
)

# KEYS: claim, lease, epoch, log.  ARGV: shoot id, token, epoch, keep-until (ms), update...
APPEND: Final = (
    FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
local id
for i = 5, #ARGV do id = redis.call('XADD', KEYS[4], '*', 'u', ARGV[i]) end
redis.call('PEXPIREAT', KEYS[4], ARGV[4])
return {1, id, redis.call('XLEN', KEYS[4])}
"""
)

# KEYS: claim, lease, epoch, snapshot, log.
# ARGV: shoot id, token, epoch, keep-until (ms), snapshot, through id, empty update.
# Before trimming, a marker entry {u: empty update, c: through id} goes to the log: a
# follower that read less than that learns it missed trimmed entries (XREAD skips them
# silently) and reloads the snapshot; loaders apply the empty update, which is a no-op.
COMPACT: Final = (
    FENCE
    + """
local refused = fenced()
if refused then return {0, refused} end
redis.call('SET', KEYS[4], ARGV[5], 'PXAT', ARGV[4])
redis.call('XADD', KEYS[5], '*', 'u', ARGV[7], 'c', ARGV[6])
redis.call('XTRIM', KEYS[5], 'MINID', ARGV[6])
redis.call('XDEL', KEYS[5], ARGV[6])
return {1}
"""
)

# KEYS: claim, lease, epoch.  ARGV: shoot id, instance, lease ms, keep-until (ms).
# Answers {1, epoch} when taken, {2, holder, pttl} when someone holds it, {0, why} when
# the shoot no longer holds its code. The INCR and the SET are one step: a separate INCR
# then SET NX can move the epoch backwards. A lease this very instance holds is a leftover
# (its actor stopped and could not give it up; instances ask only for shoots they do not
# run): it is taken again at once, with a new epoch that fences the old actor's writes.
ACQUIRE: Final = (
    CLAIMED
    + """
local refused = unclaimed()
if refused then return {0, refused} end
local holder = redis.call('GET', KEYS[2])
local mine = ':' .. ARGV[2]
if holder and string.sub(holder, -#mine) ~= mine then
  return {2, holder, redis.call('PTTL', KEYS[2])}
end
local epoch = redis.call('INCR', KEYS[3])
redis.call('PEXPIREAT', KEYS[3], ARGV[4])
redis.call('SET', KEYS[2], epoch .. ':' .. ARGV[2], 'PX', ARGV[3])
return {1, epoch}
"""
)

# KEYS: lease, epoch.  ARGV: token, epoch, lease ms. Extends the lease, or takes it back
# when it lapsed and nobody took it since (the epoch is still ours); 0 when deposed.
RENEW: Final = """
local holder = redis.call('GET', KEYS[1])
if holder == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
if not holder and redis.call('GET', KEYS[2]) == ARGV[2] then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return 1
end
return 0
"""

# KEYS: lease, log.  ARGV: token, empty update. Gives the lease up and, if the shoot has
# a log, appends a marker {u: empty update, r: token}: followers tailing the log take the
# lease at once instead of waiting for it to expire.
RELEASE: Final = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('XADD', KEYS[2], '*', 'u', ARGV[2], 'r', ARGV[1])
end
return 1
"""

# KEYS: claim, latest.  ARGV: shoot JSON, end (ms), keep-until (ms).
CLAIM: Final = """
if not redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PXAT', ARGV[2]) then return 0 end
redis.call('SET', KEYS[2], ARGV[1], 'PXAT', ARGV[3])
return 1
"""

# KEYS: inbox.  ARGV: keep-until (ms), field, value, ... Queues a forwarded request for the
# owner and keeps the inbox as long as the shoot's data.
FORWARD: Final = """
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
redis.call('PEXPIREAT', KEYS[1], ARGV[1])
return id
"""

# KEYS: inbox, replies.  ARGV: inbox entry id, keep (ms), field, value, ...
# Answers a forwarded request and takes it off the inbox in one step: an entry is either
# pending (a new owner handles it again) or answered, never dropped unanswered.
ANSWER: Final = """
redis.call('XADD', KEYS[2], 'MAXLEN', '~', 1000, '*', unpack(ARGV, 3))
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('XACK', KEYS[1], 'owners', ARGV[1])
redis.call('XDEL', KEYS[1], ARGV[1])
return 1
"""

# KEYS: log.  ARGV: empty update, notice frame. A notice for the followers, after the
# update that remembers it (only into a log that exists: it must not outlive the shoot).
NOTICE: Final = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('XADD', KEYS[1], '*', 'u', ARGV[1], 'n', ARGV[2])
return 1
"""

# KEYS: names.  ARGV: name key, claim, the claim the joiner saw ('' for none), end (ms).
# Compare and set: the name is claimed only if the hash still holds what the joiner saw,
# so of two joins of one name at the same moment exactly one wins; the loser is answered
# the claim that beat it.
NAME_CLAIM: Final = """
local held = redis.call('HGET', KEYS[1], ARGV[1])
if (held or '') ~= ARGV[3] then return {0, held} end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {1}
"""

# KEYS: names.  ARGV: name key, claim. Gives a claim back, if it is still this one.
NAME_RELEASE: Final = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
return 1
"""
