-- wrk script: PUT /collections/$COLLECTION/points?wait=true with BATCH random points (ids in a fixed
-- range, so most requests replace existing points). Pre-generated vectors, fresh ids per request.
local dim = tonumber(os.getenv("DIM") or "128")
local batch = tonumber(os.getenv("BATCH") or "8")
local collection = os.getenv("COLLECTION") or "load"
local vectors = {}
local n = 0

init = function(args)
  math.randomseed(99)
  for b = 1, 512 do
    local v = {}
    for i = 1, dim do v[i] = string.format("%.4f", math.random() * 2 - 1) end
    vectors[b] = "[" .. table.concat(v, ",") .. "]"
  end
end

request = function()
  local pts = {}
  for i = 1, batch do
    n = n + 1
    local id = math.random(0, 49999)
    pts[i] = '{"id":' .. id .. ',"vector":' .. vectors[(n % 512) + 1] .. ',"payload":{"n":' .. n .. '}}'
  end
  return wrk.format("PUT", "/collections/" .. collection .. "/points?wait=true",
                    {["Content-Type"] = "application/json"}, '{"points":[' .. table.concat(pts, ",") .. ']}')
end
