-- Argo CD health check for sessions.ai-infra.dev/UserSession.
-- Install as resource.customizations.health.sessions.ai-infra.dev_UserSession
-- in the argocd-cm ConfigMap (see docs/operations.md, "Argo CD").
--
-- A sleeping session is healthy: scale-to-zero is its normal state. One that
-- would not wake (KEDA's scaler failing, its queue unreadable) is reported by
-- the operator as Degraded, and so it is here.
hs = {}

local status = obj.status
if status == nil or status.phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report on this session"
  return hs
end

-- Until the operator has applied the current spec, what status says is about
-- an older one.
local generation = obj.metadata.generation
if generation ~= nil and (status.observedGeneration == nil or status.observedGeneration < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to apply generation " .. tostring(generation)
  return hs
end

local ready = nil
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    if condition.type == "Ready" then
      ready = condition
    end
  end
end
local detail = status.phase
if ready ~= nil and ready.message ~= nil and ready.message ~= "" then
  detail = status.phase .. ": " .. ready.message
end

if status.phase == "Suspended" then
  hs.status = "Suspended"
elseif status.phase == "Degraded" then
  hs.status = "Degraded"
elseif ready ~= nil and ready.status == "True" then
  hs.status = "Healthy"
else
  -- Pending, Waking, Terminating: on their way somewhere.
  hs.status = "Progressing"
end
hs.message = detail
return hs
