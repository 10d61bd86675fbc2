-- slot_guard.lua: the first lines of every queue script (embed_lua.py
-- puts them there). While Redis Cluster migrates a slot, its keys move
-- from one node to the other a few at a time, and a script that touches
-- a key already moved fails there, half-way: Redis does not roll back
-- the writes it made before. A key that never exists counts as "not
-- here" on the node migrating the slot away, and only then: touching one
-- first stops the script before any write, and the client sends it
-- again once the slot has moved (lib/queue/conn.c). Outside a migration
-- (and without a cluster) this costs one EXISTS.
do
  local tag = string.match(KEYS[1], '^{[^}]*}')
  if tag then
    local r = redis.pcall('EXISTS', tag .. ':slot-probe')
    if type(r) == 'table' and r.err then
      return redis.error_reply('TRYAGAIN the slot of ' .. tag ..
        ' is being migrated (' .. r.err .. ')')
    end
  end
end
