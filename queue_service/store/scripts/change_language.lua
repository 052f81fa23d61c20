-- Store.change_language: the language of a registration's pages and messages.
--
-- KEYS: registration
-- ARGV: language
-- Only an existing registration changes (one purged meanwhile is not brought back
-- as a hash holding a language alone). Returns 1 if changed, 0 if it does not exist.

if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
short_fields(KEYS[1])
redis.call('HSET', KEYS[1], FIELD.language, ARGV[1])
return 1
