--[[
meshctx job_submit.lua: refuse Slurm jobs whose parallel sizes cannot fit their node and process counts.

Runs inside slurmctld, so per job it does only local arithmetic: no network, no subprocess, no file I/O
(a stalled call here would stall the whole controller). The one file it reads is meshctx_job.lua next to
it, once, when Slurm (re)loads this script. It checks the jobs that carry sizes in their comment, as
`meshctx render slurm` writes them:

    #SBATCH --comment=meshctx:strategy=fsdp2,tp=8,pp=2,cp=1,ep=1,dp_replicate=1,dp=4,nproc=8

Keys: strategy (fsdp2 | megatron_fsdp | megatron-fsdp | mfsdp | ddp), tp, pp, cp, ep, dp, dp_replicate,
and nproc (processes per node). How nodes and processes are counted when the comment does not say
(--nodes set or not, MIN-MAX ranges, --ntasks-per-node, --gpus-per-node, --gres, --gpus) is
meshctx_job.lua's shape(). Unset sizes count as 1 and dp is inferred; every node count of a range must
work. Jobs without "meshctx:" in the comment are not touched. slurm_job_modify re-checks a job when
`scontrol update` changes its comment, node count or GPUs. The rules are the arithmetic subset of the
meshctx planner, plus no more processes per node than GPUs per node (meshctx validate gives the full report
and the fixes). Lua 5.1 to 5.4.

A missing or broken meshctx_job.lua never takes slurmctld down (Slurm exits when this script fails to
load): the script logs one line, keeps running, passes every job that did not opt in and refuses the
jobs that did (their comment has "meshctx:") with the reason, so the gate does not open unchecked. An
error while checking one job refuses that job with the error. Once the file is fixed, `touch` this
script (Slurm reloads a script whose time changed) or run `scontrol reconfigure`.
--]]

-- This script's directory (Slurm loads it by path, so the chunk's source is "@/etc/slurm/job_submit.lua").
local function script_dir()
	local source = debug.getinfo(1, "S").source
	return string.match(source, "^@(.*/)") or "./"
end

local HELPER = script_dir() .. "meshctx_job.lua"
local NEEDS = { "parse_comment", "count", "gpu_count", "verdict" }

-- meshctx_job.lua, or nil and why it cannot be used.
local function load_helper()
	local loaded, helper = pcall(dofile, HELPER)
	if not loaded then
		return nil, tostring(helper)
	end
	if type(helper) ~= "table" then
		return nil, "it returned " .. type(helper) .. ", not meshctx's job reader"
	end
	for _, name in ipairs(NEEDS) do
		if type(helper[name]) ~= "function" then
			return nil, "it has no function " .. name
		end
	end
	return helper
end

local job, unusable = load_helper()
if job == nil then
	slurm.log_error("meshctx: job_submit.lua cannot use %s (%s): jobs with meshctx: in their comment are "
		.. "refused until it is fixed, other jobs pass", HELPER, unusable)
end

-- The counts of a job description (submission) or of a stored job record (modification).
local function counts(record)
	local low, high = job.count(record.min_nodes), job.count(record.max_nodes)
	if low == 1 and high == nil then
		low = nil -- a stored record keeps "nodes not given" as min 1, max 0
	end
	return {
		min_nodes = low, max_nodes = high,
		ntasks = job.count(record.num_tasks), ntasks_per_node = job.count(record.ntasks_per_node),
		gpus_per_node = job.gpu_count(record.tres_per_node), gpus = job.gpu_count(record.tres_per_job),
	}
end

local function refuse(message)
	slurm.log_user("%s", message)
	return slurm.ERROR
end

-- Without a usable meshctx_job.lua: nil for a job that did not opt in, else the refusal.
local function unchecked(comment)
	if type(comment) == "string" and string.find(comment, "meshctx:", 1, true) then
		return "meshctx: this job cannot be checked (" .. HELPER .. " on the controller: " .. unusable
			.. "), so it is refused; ask the cluster's admin to reinstall meshctx's Slurm scripts"
	end
	return nil
end

-- The message for a new job, or nil when it may run.
local function submit_verdict(job_desc)
	local fields = job.parse_comment(job_desc.comment)
	if fields == nil then
		return nil
	end
	return (job.verdict(fields, counts(job_desc)))
end

-- An error inside a check refuses the job (with the error) rather than failing in Slurm's words.
local function guarded(check, ...)
	local ran, message = pcall(check, ...)
	if not ran then
		slurm.log_error("meshctx: job_submit.lua failed checking a job: %s", tostring(message))
		return "meshctx: this job could not be checked (" .. tostring(message) .. "), so it is refused"
	end
	return message
end

function slurm_job_submit(job_desc, part_list, submit_uid)
	local message
	if job == nil then
		message = unchecked(job_desc.comment)
	else
		message = guarded(submit_verdict, job_desc)
	end
	if message ~= nil then
		return refuse(message)
	end
	return slurm.SUCCESS
end

-- The message for an update, or nil when it may be applied: job_desc holds only what changes, job_ptr the job as
-- it is. The job is re-checked as it would become when the update touches the comment, the nodes or the GPUs.
local function modify_verdict(job_desc, job_ptr)
	local changed = counts(job_desc)
	local touches = job_desc.comment ~= nil or changed.min_nodes ~= nil or changed.max_nodes ~= nil
		or job_desc.tres_per_node ~= nil or job_desc.tres_per_job ~= nil or changed.ntasks_per_node ~= nil
	if not touches then
		return nil
	end
	local fields = job.parse_comment(job_desc.comment or job_ptr.comment)
	if fields == nil then
		return nil
	end
	local request = counts(job_ptr)
	if changed.min_nodes ~= nil then
		request.min_nodes, request.max_nodes = changed.min_nodes, changed.max_nodes
	elseif changed.max_nodes ~= nil then
		request.max_nodes = changed.max_nodes
	end
	if job_desc.tres_per_node ~= nil then
		request.gpus_per_node = job.gpu_count(job_desc.tres_per_node)
	end
	if job_desc.tres_per_job ~= nil then
		request.gpus = job.gpu_count(job_desc.tres_per_job)
	end
	request.ntasks = changed.ntasks or request.ntasks
	request.ntasks_per_node = changed.ntasks_per_node or request.ntasks_per_node
	return (job.verdict(fields, request))
end

-- `scontrol update` (`scontrol` shows only Slurm's generic error for a refused update: the reason goes to
-- slurmctld's log too).
function slurm_job_modify(job_desc, job_ptr, part_list, modify_uid)
	local message
	if job == nil then
		message = unchecked(job_desc.comment or job_ptr.comment)
	else
		message = guarded(modify_verdict, job_desc, job_ptr)
	end
	if message ~= nil then
		slurm.log_info("meshctx: refused the update of job %s: %s", tostring(job_ptr.job_id), message)
		return refuse(message)
	end
	return slurm.SUCCESS
end

return slurm.SUCCESS
