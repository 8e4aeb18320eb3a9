-- Argo CD resource health for kubetrove's kinds: DatabaseInstance, DatabaseCluster, DatabaseBackup.
-- Install: the same script under three keys of argocd-cm (see argocd-cm.yaml beside this file).
-- Written for Lua 5.1 (Argo CD runs gopher-lua); tested in tests/unit/packaging/test_argocd_health.py.
--   Healthy:     phase Ready and condition Ready=True (a backup: phase Completed)
--   Progressing: no status yet, spec not yet observed, Pending/Provisioning/Updating/Deleting, Running
--   Degraded:    Degraded or Failed, with the condition's message (a backup: status.error)
local hs = {}

local function condition(status, ctype)
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == ctype then
      return c
    end
  end
  return nil
end

-- The first non-empty message among the named conditions, else the fallback.
local function message(status, ctypes, fallback)
  for _, ctype in ipairs(ctypes) do
    local c = condition(status, ctype)
    if c ~= nil and c.message ~= nil and c.message ~= "" then
      return c.message
    end
  end
  return fallback
end

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the kubetrove operator to report status"
  return hs
end

local generation = obj.metadata.generation
if generation ~= nil and status.observedGeneration ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to act on generation " .. tostring(generation)
  return hs
end

local phase = status.phase

if obj.kind == "DatabaseBackup" then
  if phase == "Completed" then
    hs.status = "Healthy"
    hs.message = "Backup completed"
  elseif phase == "Failed" then
    hs.status = "Degraded"
    hs.message = status.error or message(status, {"Failed"}, "Backup failed")
  elseif phase == "Pending" or phase == "Running" then
    hs.status = "Progressing"
    hs.message = message(status, {"Progressing"}, "Backup " .. string.lower(phase))
  else
    hs.status = "Unknown"
    hs.message = "Unknown backup phase " .. tostring(phase)
  end
  return hs
end

if phase == "Ready" then
  local ready = condition(status, "Ready")
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = message(status, {"Ready"}, "Ready")
  else
    hs.status = "Progressing"
    hs.message = message(status, {"Ready", "Progressing"}, "Waiting for the Ready condition")
  end
elseif phase == "Pending" or phase == "Provisioning" or phase == "Updating" or phase == "Deleting" then
  hs.status = "Progressing"
  hs.message = message(status, {"Progressing", "Ready"}, phase)
elseif phase == "Degraded" then
  hs.status = "Degraded"
  hs.message = message(status, {"Degraded", "Ready"}, "Degraded")
elseif phase == "Failed" then
  hs.status = "Degraded"
  hs.message = message(status, {"Failed", "Ready"}, "Failed")
else
  hs.status = "Unknown"
  hs.message = "Unknown phase " .. tostring(phase)
end
return hs
