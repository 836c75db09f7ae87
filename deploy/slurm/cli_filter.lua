--[[
meshctx cli_filter.lua: check sbatch/salloc/srun sizes before submission, with meshctx's full report.

Runs in the user's sbatch/salloc/srun process (not in slurmctld). It reads the sizes from the job's comment
(the format `meshctx render slurm` writes, see job_submit.lua) and the node and process counts of the
command line with meshctx_job.lua (loaded from this script's directory: install the three files side by
side) and applies the same rules as job_submit.lua. A job that passes them costs no subprocess. A job
that breaks them is explained by `meshctx validate` (problems, hints, suggested sizes) and refused.

Refused (the job is not submitted): meshctx validate says INVALID, the comment is unreadable (unknown key,
a size that is not an integer >= 1, unknown strategy), the job gives no process count, or --nodes cannot be
read. Passed unchecked, with one log line, to job_submit.lua, which still enforces the rules inside
slurmctld: meshctx_job.lua is missing or broken, or the CLI is missing, crashes, takes longer than
MESHCTX_CLI_TIMEOUT seconds (default 5), exits 2 (a usage error, e.g. an older CLI) or answers anything
else. A cli_filter can be bypassed by users (their own SLURM_CONF), which is why both exist.

The CLI is `meshctx` on PATH, or the command in MESHCTX_CLI (e.g. "/opt/meshctx/bin/meshctx"); it runs
under coreutils `timeout`.
--]]

local function script_dir()
	local source = debug.getinfo(1, "S").source
	return string.match(source, "^@(.*/)") or "./"
end

local HELPER = script_dir() .. "meshctx_job.lua"
local NEEDS = { "parse_comment", "count", "gpu_count", "verdict", "FLAGS" }
local DEFAULT_TIMEOUT = 5

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
		if helper[name] == nil then
			return nil, "it has no " .. name
		end
	end
	return helper
end

local job, unusable = load_helper()

-- Only plain tokens go on the command line: nothing a shell would interpret.
local function safe(value)
	return type(value) == "string" and string.match(value, "^[%w_:%-%.]+$") ~= nil
end

-- --nodes as the CLI filter sees it: "2", "2-4", or "1-0" when the user gave none. nil, nil when not given.
local function node_range(value)
	if value == nil or value == "" then
		return nil, nil, nil
	end
	local low, high = string.match(value, "^(%d+)%-(%d+)$")
	if low == nil then
		low = string.match(value, "^(%d+)$")
		high = low
	end
	if low == nil then
		return nil, nil, "meshctx: cannot read --nodes=" .. string.format("%q", value) .. "; give N or MIN-MAX"
	end
	low, high = tonumber(low), tonumber(high)
	if high == 0 then
		if low <= 1 then
			return nil, nil, nil -- Slurm's "1-0": --nodes not given
		end
		high = nil
	end
	return job.count(low), job.count(high), nil
end

-- The job's counts as the CLI filter sees them, or nil and the refusal when --nodes cannot be read.
local function request_of(options)
	local low, high, unreadable = node_range(options["nodes"])
	if unreadable ~= nil then
		return nil, unreadable
	end
	return {
		min_nodes = low, max_nodes = high,
		ntasks = job.count(options["ntasks"]), ntasks_per_node = job.count(options["ntasks-per-node"]),
		gpus_per_node = job.gpu_count(options["gpus-per-node"]) or job.gpu_count(options["gres"]),
		gpus = job.gpu_count(options["gpus"]),
	}
end

-- Seconds the CLI may take: MESHCTX_CLI_TIMEOUT when it is a number > 0, else the default.
function meshctx_timeout()
	local given = tonumber(os.getenv("MESHCTX_CLI_TIMEOUT") or "")
	if given ~= nil and given > 0 then
		return given
	end
	return DEFAULT_TIMEOUT
end

-- The `meshctx validate` command line for a job read as `sizes` and `shape` (meshctx_job's verdict), with
-- the GPUs per node in `request`; nil and a refusal when a value is not a plain token.
function meshctx_command(sizes, shape, request)
	local args = { "validate", "--strategy", sizes.strategy }
	if shape.world ~= nil then
		table.insert(args, "--world-size")
		table.insert(args, tostring(shape.world))
	else
		local nodes = tostring(shape.min_nodes)
		if shape.max_nodes ~= shape.min_nodes then
			nodes = nodes .. ":" .. tostring(shape.max_nodes)
		end
		for _, arg in ipairs({ "--nnodes", nodes, "--nproc-per-node", tostring(shape.nproc) }) do
			table.insert(args, arg)
		end
		if request.gpus_per_node ~= nil then
			table.insert(args, "--gpus-per-node")
			table.insert(args, tostring(request.gpus_per_node))
		end
	end
	for _, pair in ipairs(job.FLAGS) do
		if sizes[pair[1]] ~= nil then
			table.insert(args, pair[2])
			table.insert(args, tostring(sizes[pair[1]]))
		end
	end
	for _, arg in ipairs(args) do
		if not safe(arg) then
			return nil, "meshctx: refusing the unsafe value " .. string.format("%q", arg) .. " in the job's sizes"
		end
	end
	local cli = os.getenv("MESHCTX_CLI") or "meshctx"
	return "timeout -k 1 " .. tostring(meshctx_timeout()) .. " " .. cli .. " " .. table.concat(args, " ")
end

-- What the CLI's answer means: "pass", "refuse", or "unchecked" (it did not answer as meshctx validate does:
-- missing, crashed, timed out (124, 137), a usage error (2)).
function meshctx_outcome(status, report)
	if status == 0 then
		return "pass"
	end
	if string.find(report, "Traceback", 1, true) then
		return "unchecked"
	end
	if status == 1 and string.find(report, "INVALID", 1, true) then -- validate's report of an invalid topology
		return "refuse"
	end
	return "unchecked"
end

local function last_line(text)
	local line = ""
	for item in string.gmatch(text, "[^\n]+") do
		line = item
	end
	return line
end

local function pass_unchecked(format, ...)
	slurm.log_info("meshctx: " .. format .. "; not checked here (job_submit.lua still checks it)", ...)
	return slurm.SUCCESS
end

local function pre_submit(options)
	local fields = job.parse_comment(options["comment"])
	if fields == nil then
		return slurm.SUCCESS
	end
	local request, unreadable = request_of(options)
	if request == nil then
		slurm.log_error("%s", unreadable)
		return slurm.ERROR
	end
	local message, sizes, shape = job.verdict(fields, request)
	if message == nil then
		return slurm.SUCCESS
	end
	if sizes == nil then -- the job cannot be read: the message names what to fix
		slurm.log_error("%s", message)
		return slurm.ERROR
	end
	local command, unsafe = meshctx_command(sizes, shape, request)
	if command == nil then
		slurm.log_error("%s", unsafe)
		return slurm.ERROR
	end
	local pipe = io.popen(command .. " 2>&1; echo \"MESHCTX_EXIT=$?\"")
	if pipe == nil then
		return pass_unchecked("could not run %s", command)
	end
	local output = pipe:read("*a")
	pipe:close()
	local status = tonumber(string.match(output, "MESHCTX_EXIT=(%d+)%s*$"))
	local report = string.gsub(output, "MESHCTX_EXIT=%d+%s*$", "")
	local outcome = meshctx_outcome(status, report)
	if outcome == "refuse" then
		slurm.log_error("meshctx refused this job's sizes:\n%s", report)
		return slurm.ERROR
	end
	if status == 124 or status == 137 then
		return pass_unchecked("%s took longer than %s s (MESHCTX_CLI_TIMEOUT)", command, tostring(meshctx_timeout()))
	end
	return pass_unchecked("%s exited with %s (%s)", command, tostring(status), last_line(report))
end

function slurm_cli_pre_submit(options, pack_offset)
	if job == nil then
		return pass_unchecked("cli_filter.lua cannot use %s (%s)", HELPER, unusable)
	end
	local ran, result = pcall(pre_submit, options)
	if not ran then
		return pass_unchecked("cli_filter.lua failed (%s)", tostring(result))
	end
	return result
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
